"""Weaviate's quantized multi-vector indexes (RQ, BQ) and MUVERA on a cut of SciFact, side by side
with exact MaxSim and Qdrant Edge's token codecs on the same cut and the same token embeddings.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/weaviate_multivector.py [--docs 1000] [--model DIR]
        [--output runs/weaviate-multivector.json]

Why a cut: Weaviate puts every token vector of a multi-vector field into its HNSW graph, and on
2 cores that ingests a few SciFact abstracts a second (the whole corpus, about 780,000 tokens,
would take most of an hour a row). The cut keeps every document a test query is judged against
and fills up to --docs with the rest in corpus order, so all 300 queries keep their answers and
every row searches the same documents; exact MaxSim on the cut is the reference.

Weaviate: $WEAVIATE_URL if set, else a server this script starts (scripts/weaviate.sh, build it
once with `scripts/weaviate.sh build`) with its data in a temporary folder, so sizes can be read.

Rows:
- brute-force MaxSim: ragembed's MemoryStore `colbert` (numpy, exact).
- Qdrant Edge `colbert+dense[:datatype]`: dense HNSW first stage (100 candidates), MaxSim rerank
  over float32 or TurboQuant (turbo4) tokens, as in benchmarks/multivector.py.
- Weaviate multi-vector HNSW `colbert[:int8|:binary]`: Weaviate's own MaxSim search of the
  multi-vector field's HNSW index (every token in the graph), the tokens kept as float32, 8-bit
  RQ codes or BQ bits, Weaviate rescoring what it returns with the original tokens (ragembed
  asks for 4 x k with int8, 10 x k with binary); and `colbert+dense[...]` on the same
  collection: the dense first stage as a named vector, whose 100 candidates' ids filter that
  MaxSim search.
- Weaviate MUVERA `colbert[...]`, `colbert+dense[...]`: WeaviateStore(muvera=True), the engine's
  own fixed-size encoding of each document's tokens in the HNSW graph, MaxSim rescoring; alone
  or behind the dense first stage, with float32 tokens or RQ.

Columns: nDCG@10 and recall@10 against exact MaxSim on the cut; p50/p95 ms one query at a time,
k=10, query embeddings cached, after one warm-up query; ingest docs/s of `Retriever.index` with
the embeddings cached (the HNSW builds); sizes MB as `du` counts them: Qdrant's segments (WAL
apart), Weaviate's collection folder (its LSM stores, HNSW commit logs and the write-ahead logs
of the memtables not flushed yet: what that collection occupies on disk at that moment).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import _bench

from ragembed import ColBERTEmbedder, DenseEmbedder, MemoryStore, Retriever
from ragembed.evaluation import load_beir
from ragembed.evaluation.beir import BeirDataset
from ragembed.stores.base import VectorStore
from ragembed.stores.qdrant import QdrantEdgeStore
from ragembed.stores.weaviate import WeaviateStore
from ragembed.stores.weaviate.store import class_name


def judged_ids(data: BeirDataset) -> set[str]:
    return {d for answers in data.qrels.values() for d in answers}


def cut(data: BeirDataset, size: int) -> BeirDataset:
    """Every judged document, then the others in corpus order, up to `size` documents."""
    judged = judged_ids(data)
    kept = [d for d in data.corpus if d.id in judged]
    kept += [d for d in data.corpus if d.id not in judged][: max(0, size - len(kept))]
    return dataclasses.replace(data, corpus=kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(_bench.SCIFACT))
    parser.add_argument("--docs", type=int, default=1000, help="documents in the cut (default 1000)")
    parser.add_argument("--model", default=None, help="a PyLate model folder (default: bundled MiniLM + head)")
    parser.add_argument("--output", default="runs/weaviate-multivector.json")
    args = parser.parse_args()
    whole = load_beir(args.data, "test")
    data, total = cut(whole, args.docs), len(whole.corpus)
    qids = list(data.queries)
    queries = [data.queries[q] for q in qids]
    dense, colbert = DenseEmbedder(show_progress=True), ColBERTEmbedder(args.model, show_progress=True)
    texts = [d.text for d in data.corpus]
    colbert.embed_documents(texts)  # warm the caches: ingest measures the stores, not the models
    dense.embed_documents(texts)
    tokens = sum(m.nbytes for m in colbert.embed_documents(texts).vectors) / _bench.MB

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        server = _bench.WeaviateServer(tmp / "weaviate")

        def weaviate(collection: str, muvera: bool = False) -> tuple[Callable[[], VectorStore], Callable[[], float]]:
            def size() -> float:
                return (
                    _bench.disk_bytes([server.data / class_name(collection).lower()]) / _bench.MB
                    if server.data
                    else float("nan")
                )

            return partial(WeaviateStore, server.url, collection, grpc_port=server.grpc_port, muvera=muvera), size

        def edge(name: str) -> tuple[Callable[[], VectorStore], Callable[[], float]]:
            def size() -> float:
                return _bench.disk_bytes([tmp / name / "bench/shard/segments"]) / _bench.MB

            return partial(QdrantEdgeStore, tmp / name, "bench"), size

        # (system, the strategies searched on one collection, the store, its size)
        collections: list[tuple[str, list[str], Callable[[], VectorStore], Callable[[], float]]] = [
            ("brute-force MaxSim (memory store)", ["colbert"], MemoryStore, lambda: tokens),
            ("Qdrant Edge", ["colbert+dense"], *edge("edge-float32")),
            ("Qdrant Edge", ["colbert+dense:turbo4"], *edge("edge-turbo4")),
            ("Weaviate, multi-vector HNSW", ["colbert", "colbert+dense"], *weaviate("BenchMvFloat")),
            ("Weaviate, multi-vector HNSW, RQ 8-bit", ["colbert:int8", "colbert+dense:int8"], *weaviate("BenchMvRq")),
            ("Weaviate, multi-vector HNSW, BQ", ["colbert:binary", "colbert+dense:binary"], *weaviate("BenchMvBq")),
            ("Weaviate MUVERA", ["colbert", "colbert+dense"], *weaviate("BenchMuvera", muvera=True)),
            (
                "Weaviate MUVERA, RQ 8-bit",
                ["colbert:int8", "colbert+dense:int8"],
                *weaviate("BenchMuveraRq", muvera=True),
            ),
        ]
        found: list[dict] = []
        exact: list[list[str]] | None = None
        try:
            for system, strategies, make, size in collections:
                store = make()
                if isinstance(store, WeaviateStore):
                    store.drop()  # a collection of this name left by an earlier run on $WEAVIATE_URL
                retriever = Retriever(store, strategies, embedder=dense, multivector_embedder=colbert, passages=False)
                started = time.perf_counter()
                retriever.index(data.corpus)
                ingest_s = time.perf_counter() - started
                rows = []
                for strategy in strategies:
                    search = partial(retriever.search, k=10, strategy=strategy)
                    results, timing = _bench.timed_each(search, queries)
                    ids = [[h.id for h in hits] for hits in results]
                    exact = exact or ids  # the brute-force row comes first
                    rows.append(
                        {
                            "system": system,
                            "strategy": strategy,
                            "ndcg@10": _bench.ndcg_at_10(qids, results, data.qrels),
                            "recall@10": _bench.recall_vs(ids, exact),
                            **timing,
                            "ingest_docs_per_s": len(data.corpus) / ingest_s,
                        }
                    )
                # Qdrant's optimizer may still hold a segment twice until the store is closed
                if isinstance(store, WeaviateStore):
                    size_mb = size()
                    store.drop()
                    retriever.close()
                else:
                    retriever.close()
                    size_mb = size()
                for row in rows:
                    found.append(row | {"size_mb": size_mb})
                    print(
                        f"{system} {row['strategy']}: "
                        + ", ".join(f"{k} {v:.4g}" for k, v in found[-1].items() if k not in ("system", "strategy")),
                        flush=True,
                    )
        finally:
            server.stop()
    print(
        f"\nSciFact{' cut' if len(data.corpus) < total else ''}: {len(data.corpus)} documents "
        f"(all {len(judged_ids(data))} judged ones), "
        f"{len(qids)} queries, k=10, ColBERT {args.model or 'MiniLM + untrained head'}, {_bench.machine()}"
    )
    print(
        _bench.table(
            found,
            [
                ("system", "system", ""),
                ("strategy", "strategy", ""),
                ("ndcg@10", "nDCG@10", ".4f"),
                ("recall@10", "recall@10 vs exact", ".3f"),
                ("p50_ms", "p50 ms", ".1f"),
                ("p95_ms", "p95 ms", ".1f"),
                ("ingest_docs_per_s", "ingest docs/s", ".1f"),
                ("size_mb", "size MB", ".1f"),
            ],
        )
    )
    _bench.write_json(
        args.output,
        {
            "model": args.model or "bundled MiniLM + untrained ColBERT head",
            "documents": len(data.corpus),
            "rows": found,
        },
    )


if __name__ == "__main__":
    main()
