"""Multi-vector (ColBERT) retrieval on SciFact: ragembed through the Qdrant Edge engine (MaxSim
over every document, and with a single-vector first stage) against PyLate's PLAID index
(fast-plaid) and brute-force MaxSim.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/multivector.py [--model DIR] [--output runs/multivector.json]

Model: the bundled all-MiniLM-L6-v2 with PyLate's ColBERT head (untrained unless --model names
a model made by `ragembed finetune colbert`); 128-dim token vectors, documents up to 256
tokens, queries 32. Token embeddings come from ragembed's cache (the first run encodes the
corpus: about 10 minutes on 2 cores), and every system gets the same ones, so the table compares
the indexes, not the model. Build: time from embeddings to a searchable index. Bytes: the index
on disk (Edge folder, PLAID folder) or the float32 token matrices held in memory (brute force).
Latency: one query at a time, k=10, after one warm-up query (query embeddings cached); for
PLAID, the first 50 queries (its nDCG@10 comes from one batched call over all 300).

Rows:
- brute-force MaxSim: ragembed's MemoryStore `colbert` strategy (numpy, exact).
- ragembed + Qdrant Edge `colbert`: Qdrant's MAX_SIM multivector comparator over all points.
- ragembed + Qdrant Edge `colbert+dense`: dense HNSW first stage (100 candidates), MaxSim rerank.
- PyLate PLAID (fast-plaid): 4-bit residual compression, centroid probing (PyLate's defaults).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path

import _bench

from ragembed import ColBERTEmbedder, DenseEmbedder, MemoryStore, Retriever
from ragembed.evaluation import load_beir
from ragembed.stores.qdrant import QdrantEdgeStore
from ragembed.types import Hit

LATENCY_QUERIES = 50  # PLAID's latency sample


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def ragembed_rows(data, qids, colbert, dense, token_bytes: int, tmp: Path) -> list[dict]:
    queries = [data.queries[q] for q in qids]
    setups = {
        "brute-force MaxSim (ragembed memory store)": (lambda: MemoryStore(), "colbert", None),
        "ragembed + Qdrant Edge: colbert": (lambda: QdrantEdgeStore(tmp / "edge", "bench"), "colbert", tmp / "edge"),
        "ragembed + Qdrant Edge: colbert+dense": (
            lambda: QdrantEdgeStore(tmp / "edge-2", "bench"),
            "colbert+dense",
            tmp / "edge-2",
        ),
    }
    rows = []
    for system, (make, strategy, folder) in setups.items():
        retriever = Retriever(make(), strategy, embedder=dense, multivector_embedder=colbert)
        started = time.perf_counter()
        retriever.index(data.corpus)
        build_s = time.perf_counter() - started
        results, timing = _bench.timed_each(partial(retriever.search, k=10), queries)
        size = token_bytes if folder is None else folder_bytes(folder)  # in memory: the float32 tokens
        rows.append(
            {
                "system": system,
                "build_s": build_s,
                "index_mb": size / 2**20,
                "ndcg@10": _bench.ndcg_at_10(qids, results, data.qrels),
                **timing,
            }
        )
        retriever.close()
    return rows


def plaid_row(data, qids, colbert, docs: tuple, tmp: Path) -> dict:
    from pylate import indexes, retrieve

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
    size = folder_bytes(tmp / "plaid")
    shutil.rmtree(tmp / "plaid", ignore_errors=True)
    return {
        "system": "PyLate PLAID (fast-plaid, 4-bit)",
        "build_s": build_s,
        "index_mb": size / 2**20,
        "ndcg@10": _bench.ndcg_at_10(qids, results, data.qrels),
        **timing,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(_bench.SCIFACT))
    parser.add_argument("--model", default=None, help="a PyLate model folder (default: bundled MiniLM + head)")
    parser.add_argument("--output", default="runs/multivector.json")
    args = parser.parse_args()
    data = load_beir(args.data, "test")
    qids = list(data.queries)
    colbert = ColBERTEmbedder(args.model, show_progress=True)
    dense = DenseEmbedder(show_progress=True)
    texts = [d.text for d in data.corpus]
    tokens = colbert.embed_documents(texts).vectors  # warms the caches: builds measure indexes, not models
    dense.embed_documents(texts)
    with tempfile.TemporaryDirectory() as folder:
        rows = ragembed_rows(data, qids, colbert, dense, sum(m.nbytes for m in tokens), Path(folder))
        rows.append(plaid_row(data, qids, colbert, tokens, Path(folder)))
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
                ("p50_ms", "p50 ms", ".1f"),
                ("p95_ms", "p95 ms", ".1f"),
                ("index_mb", "index MB", ".1f"),
                ("build_s", "build s", ".1f"),
            ],
        )
    )
    _bench.write_json(args.output, {"model": args.model or "bundled MiniLM + untrained ColBERT head", "rows": rows})


if __name__ == "__main__":
    main()
