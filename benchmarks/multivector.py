"""Multi-vector (ColBERT) retrieval on SciFact: ragembed through the Qdrant Edge engine, with the
token vectors whole or pooled and kept as float32, float16 or TurboQuant codes, against PyLate's
PLAID index (fast-plaid) and brute-force MaxSim.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/multivector.py [--model DIR] [--strategies NAME,...]
        [--skip-plaid] [--output runs/multivector.json]

Model: the bundled all-MiniLM-L6-v2 with PyLate's ColBERT head (untrained unless --model names
a model made by `ragembed finetune colbert`); 128-dim token vectors (or --model's), documents up to 256
tokens, queries 32. Token embeddings come from ragembed's cache (the first run encodes the
corpus: about 4 minutes on 2 cores) and every system gets the same ones, so the table compares
the indexes, not the model; pooled rows pool those same tokens (PyLate's hierarchical pooling,
inside the build time).

Columns: nDCG@10; recall@10 against exact MaxSim over the whole tokens (the brute-force row);
p50/p95 ms, one query at a time, k=10, after one warm-up query (query embeddings cached; for
PLAID the first 50 queries, its quality from one batched call over all 300); sizes in MB on disk
(allocated blocks, as `du` counts them): `tokens` the token vectors alone (the Edge field's vector
storage, the PLAID folder, or the float32 matrices brute force holds in RAM), `codes` the part of
`tokens` that is a quantized index (int8 / binary rows: Qdrant keeps it in RAM, the float32
originals on disk, read only to rescore), `index` all of the
collection's segments (token vectors, the dense first stage's vectors and HNSW graph, payloads
with the text), `first` the first stage's vectors and HNSW graph alone, `wal` Qdrant's
write-ahead log beside them; build: from embeddings to a searchable index (MUVERA rows: with
encoding the documents' tokens).

Rows:
- brute-force MaxSim: ragembed's MemoryStore `colbert` strategy (numpy, exact).
- Edge `colbert`: Qdrant's MAX_SIM comparator over every document.
- Edge `colbert+dense[:datatype][:candidates]`: dense HNSW first stage (100 candidates, or the
  number the name ends with), MaxSim rerank over tokens kept as float32, float16 (half floats),
  turbo8 or turbo4 (Qdrant's TurboQuant storage: 8 or 4 bits a dimension, no float copy), with
  pool factor 1, 2 or 3; rows that say "no stop words" are made by ColBERTEmbedder(drop_stop_words=True):
  the documents' English stop-word tokens left out too (PyLate leaves out punctuation in every row);
  "no WAL" rows are made by QdrantEdgeStore(write_ahead_log=False).
- Edge `colbert+dense:int8|binary[:candidates]`: the same first stage; MaxSim over Qdrant's scalar
  int8 or binary quantization of the tokens ranks the candidates, the best 40 (int8) or 100 (binary)
  are rescored with the float32 originals the field keeps on disk.
- Edge `colbert+muvera[:shape][:datatype][:candidates]`: the first stage is an HNSW index over
  MUVERA encodings of the same ColBERT tokens (fastembed's; the default shape k5p16r20 is 10,240
  dimensions, k4p16r10 2,560), instead of the dense model's vector.
- PyLate PLAID (fast-plaid): 4-bit residual compression, centroid probing (PyLate's defaults).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import _bench

from ragembed import ColBERTEmbedder, DenseEmbedder, MemoryStore, Retriever
from ragembed.evaluation import load_beir
from ragembed.stores.qdrant import QdrantEdgeStore
from ragembed.types import Hit

LATENCY_QUERIES = 50  # PLAID's latency sample


@dataclass(frozen=True)
class Config:
    strategy: str
    pool: int = 1
    store: str = "edge"  # or "memory" (brute force)
    drop_stop_words: bool = False
    write_ahead_log: bool = True

    @property
    def system(self) -> str:
        where = "brute-force MaxSim (memory store)" if self.store == "memory" else "Qdrant Edge"
        pooled = f", pool {self.pool}" if self.pool > 1 else ""
        return (
            f"{where}: {self.strategy}{pooled}"
            + (", no stop words" if self.drop_stop_words else "")
            + ("" if self.write_ahead_log else ", no WAL")
        )


CONFIGS = [
    Config("colbert", store="memory"),
    Config("colbert"),
    Config("colbert+dense"),
    *(Config(f"colbert+dense:{d}", pool) for pool in (1, 2, 3) for d in ("float16", "turbo8", "turbo4")),
    Config("colbert:turbo4", 2),  # MaxSim over every document again, on the smallest tokens
    # fewer first-stage candidates: MaxSim over fewer documents' tokens, the cost that grows with them
    *(Config(f"colbert+dense:{d}:{n}") for n in (50, 30) for d in ("turbo8", "turbo4")),
    # a quantized index of the tokens beside their float32 originals (the codes in RAM, the
    # originals on disk): MaxSim on the codes, the best 4 x k (int8) or 10 x k (binary) rescored
    *(Config(f"colbert+dense:{p}{n}") for n in ("", ":50") for p in ("int8", "binary")),
    # fewer tokens without pooling: the documents' stop words left out
    *(Config(f"colbert+dense:{d}", drop_stop_words=True) for d in ("float16", "turbo4", "turbo4:50")),
    *(Config(f"colbert+dense:{d}", 2, drop_stop_words=True) for d in ("float16", "turbo4")),  # and pooled
    # the same collections without Qdrant's write-ahead log (each write flushed before it returns)
    *(Config(f"colbert+dense:{d}", write_ahead_log=False) for d in ("turbo4", "turbo4:50")),
    # a MUVERA first stage over the same tokens instead of the dense model's vector
    *(Config(f"colbert+muvera{shape}:turbo4{n}") for shape in ("", ":k4p16r10") for n in ("", ":50")),
]


def edge_sizes(shard: Path, fields: list[str]) -> dict[str, float]:
    """Sizes of a collection whose fields are [first stage, tokens] or [tokens]."""
    segments = list((shard / "segments").glob("*"))
    first = fields[0] if len(fields) == 2 else None
    tokens = [s / f"vector_storage-{fields[-1]}" for s in segments]
    return {
        "tokens_mb": _bench.disk_bytes(tokens) / _bench.MB,
        "codes_mb": _bench.disk_bytes(p for t in tokens for p in t.glob("quantized.*")) / _bench.MB,
        "first_mb": _bench.disk_bytes(s / f"vector_{part}-{first}" for s in segments for part in ("storage", "index"))
        / _bench.MB
        if first
        else 0.0,
        "index_mb": _bench.disk_bytes([shard / "segments"]) / _bench.MB,
        "wal_mb": _bench.disk_bytes([shard / "wal"]) / _bench.MB,
    }


def ragembed_row(config: Config, data, qids, colbert_of, dense, tmp: Path) -> tuple[dict, list]:
    folder = tmp / config.system.replace(" ", "_").replace(":", "_").replace(",", "")
    store = (
        MemoryStore()
        if config.store == "memory"
        else QdrantEdgeStore(folder, "bench", write_ahead_log=config.write_ahead_log)
    )
    colbert = colbert_of(config.pool, config.drop_stop_words)
    retriever = Retriever(store, config.strategy, embedder=dense, multivector_embedder=colbert, passages=False)
    started = time.perf_counter()
    retriever.index(data.corpus)
    build_s = time.perf_counter() - started
    results, timing = _bench.timed_each(partial(retriever.search, k=10), [data.queries[q] for q in qids])
    fields = retriever.strategies[config.strategy].field_names
    retriever.close()
    if config.store == "memory":
        tokens = sum(m.nbytes for m in colbert.embed_documents([d.text for d in data.corpus]).vectors) / _bench.MB
        sizes = {"tokens_mb": tokens, "codes_mb": 0.0, "first_mb": 0.0, "index_mb": tokens, "wal_mb": 0.0}
    else:
        sizes = edge_sizes(folder / "bench" / "shard", fields)
        shutil.rmtree(folder, ignore_errors=True)
    row = {
        "system": config.system,
        "strategy": config.strategy,
        "pool": config.pool,
        "build_s": build_s,
        "ndcg@10": _bench.ndcg_at_10(qids, results, data.qrels),
        **sizes,
        **timing,
    }
    return row, results


def plaid_row(data, qids, colbert, tmp: Path) -> tuple[dict, list]:
    from pylate import indexes, retrieve

    docs = colbert.embed_documents([d.text for d in data.corpus]).vectors
    query_vectors = colbert.embed_queries([data.queries[q] for q in qids]).vectors
    started = time.perf_counter()
    index = indexes.PLAID(index_folder=str(tmp / "plaid"), index_name="scifact", override=True, show_progress=False)
    index.add_documents(documents_ids=[d.id for d in data.corpus], documents_embeddings=list(docs))
    build_s = time.perf_counter() - started
    searcher = retrieve.ColBERT(index=index)
    # On a CPU fast-plaid takes over a second per query: quality from one batched call over all
    # queries, latency from the first LATENCY_QUERIES one at a time (keeps the script < 30 min).
    found = searcher.retrieve(queries_embeddings=list(query_vectors), k=10)
    _, timing = _bench.timed_each(
        lambda q: searcher.retrieve(queries_embeddings=[q], k=10), list(query_vectors)[:LATENCY_QUERIES]
    )
    results = [[Hit(str(r["id"]), float(r["score"])) for r in top] for top in found]
    size = _bench.disk_bytes([tmp / "plaid"]) / _bench.MB
    shutil.rmtree(tmp / "plaid", ignore_errors=True)
    row = {
        "system": "PyLate PLAID (fast-plaid, 4-bit)",
        "strategy": "plaid",
        "pool": 1,
        "build_s": build_s,
        "ndcg@10": _bench.ndcg_at_10(qids, results, data.qrels),
        "tokens_mb": size,
        "codes_mb": 0.0,
        "first_mb": 0.0,
        "index_mb": size,
        "wal_mb": 0.0,
        **timing,
    }
    return row, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(_bench.SCIFACT))
    parser.add_argument("--model", default=None, help="a PyLate model folder (default: bundled MiniLM + head)")
    parser.add_argument(
        "--strategies", default=None, help="comma-separated strategy names: only their rows (and the exact reference)"
    )
    parser.add_argument("--skip-plaid", action="store_true", help="leave out PyLate's PLAID row")
    parser.add_argument("--output", default="runs/multivector.json")
    args = parser.parse_args()
    data = load_beir(args.data, "test")
    qids = list(data.queries)
    embedders: dict[tuple[int, bool], ColBERTEmbedder] = {}

    def colbert_of(pool: int, drop_stop_words: bool = False) -> ColBERTEmbedder:
        if (pool, drop_stop_words) not in embedders:
            embedders[pool, drop_stop_words] = ColBERTEmbedder(
                args.model, pool_factor=pool, drop_stop_words=drop_stop_words, show_progress=True
            )
        return embedders[pool, drop_stop_words]

    configs = CONFIGS
    if args.strategies:
        chosen = set(args.strategies.split(","))
        configs = [CONFIGS[0], *(c for c in configs[1:] if c.strategy in chosen)]  # [0]: the exact reference

    dense = DenseEmbedder(show_progress=True)
    texts = [d.text for d in data.corpus]
    colbert_of(1).embed_documents(texts)  # warms the caches: builds measure indexes, not models
    dense.embed_documents(texts)
    rows, exact = [], None
    with tempfile.TemporaryDirectory() as folder:
        for config in configs:
            row, results = ragembed_row(config, data, qids, colbert_of, dense, Path(folder))
            exact = exact or [[h.id for h in hits] for hits in results]  # the brute-force row comes first
            rows.append(row | {"recall@10": _bench.recall_vs([[h.id for h in r] for r in results], exact)})
        if not args.skip_plaid:
            row, results = plaid_row(data, qids, colbert_of(1), Path(folder))
            rows.append(row | {"recall@10": _bench.recall_vs([[h.id for h in r] for r in results], exact)})
    print(
        f"\nSciFact: {len(data.corpus)} documents, {len(qids)} queries, k=10, "
        f"ColBERT {args.model or 'MiniLM + untrained head'}, {_bench.machine()}"
    )
    print(
        _bench.table(
            rows,
            [
                ("system", "system", ""),
                ("ndcg@10", "nDCG@10", ".4f"),
                ("recall@10", "recall@10 vs exact", ".3f"),
                ("p50_ms", "p50 ms", ".1f"),
                ("p95_ms", "p95 ms", ".1f"),
                ("tokens_mb", "tokens MB", ".1f"),
                ("codes_mb", "codes MB", ".1f"),
                ("first_mb", "first stage MB", ".1f"),
                ("index_mb", "index MB", ".1f"),
                ("wal_mb", "wal MB", ".1f"),
                ("build_s", "build s", ".1f"),
            ],
        )
    )
    _bench.write_json(args.output, {"model": args.model or "bundled MiniLM + untrained ColBERT head", "rows": rows})


if __name__ == "__main__":
    main()
