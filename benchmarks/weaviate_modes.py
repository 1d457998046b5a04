"""Weaviate beside the exact memory store and the Qdrant Edge engine on BEIR SciFact: ingest
throughput, query latency p50/p95, nDCG@10 and recall@10 against exact search, per strategy;
then ColBERT with MUVERA against exact MaxSim.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/weaviate_modes.py [--data data/scifact]
        [--output runs/weaviate_modes.json] [--skip-colbert]

Weaviate: $WEAVIATE_URL (gRPC on $WEAVIATE_GRPC_PORT, default 50051) if set, else a server this
script starts with scripts/weaviate.sh on free ports and a temporary folder (build it once: scripts/weaviate.sh
build), plus embedded mode. Embeddings come from ragembed's cache (the first run encodes the
corpus: minutes on a CPU), so ingest measures the stores. Latency is one query at a time through
Retriever.search, k=100, query embeddings cached. Keyword strategies are each engine's own BM25:
bm25/hybrid (sparse vectors, RRF) on memory and Qdrant, keyword/keyword-hybrid on Weaviate.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import _bench

from ragembed import DenseEmbedder, MemoryStore, Retriever
from ragembed.embedders.sparse import BM25Embedder
from ragembed.evaluation import load_beir
from ragembed.stores.qdrant import QdrantEdgeStore
from ragembed.stores.weaviate import WeaviateStore

REPO = _bench.REPO
VECTOR = ["dense", "int8", "binary", "funnel:64"]
SPARSE_KEYWORD, ENGINE_KEYWORD = ["bm25", "hybrid"], ["keyword", "keyword-hybrid"]


def exact_of(strategy: str) -> str:
    """The exact search a strategy approximates: dense for vector strategies, colbert for MaxSim."""
    return "colbert" if strategy.startswith("colbert") else "dense" if strategy in VECTOR else strategy


def dense_section(data, qids, tmp: Path, server: _bench.WeaviateServer) -> list[dict]:
    dense, bm25 = DenseEmbedder(show_progress=True), BM25Embedder()
    dense.embed_documents([d.text for d in data.corpus])  # warm the cache
    modes = {
        "memory": (lambda: MemoryStore(), VECTOR + SPARSE_KEYWORD),
        "qdrant-edge": (lambda: QdrantEdgeStore(tmp / "edge", "bench"), VECTOR + SPARSE_KEYWORD),
        "weaviate-hnsw": (
            lambda: WeaviateStore(server.url, "BenchHnsw", grpc_port=server.grpc_port),
            VECTOR + ENGINE_KEYWORD,
        ),
        "weaviate-flat": (
            lambda: WeaviateStore(server.url, "BenchFlat", grpc_port=server.grpc_port, index="flat"),
            VECTOR + ENGINE_KEYWORD,
        ),
        "weaviate-embedded": (lambda: WeaviateStore.embedded(tmp / "embedded", "Bench"), VECTOR + ENGINE_KEYWORD),
    }
    rows, truth = [], None
    for mode, (make, strategies) in modes.items():
        store = make()
        store.drop()
        retriever = Retriever(store, strategies, embedder=dense, sparse_embedder=bm25, passages=False)
        started = time.perf_counter()
        retriever.index(data.corpus)
        ingest_s = time.perf_counter() - started
        found = _bench.measure_strategies(retriever, strategies, data, qids, truth, mode, ingest_s, exact_of)
        if truth is None:
            truth = {r["strategy"]: r["top10"] for r in found}
        rows += found
        if mode.startswith("weaviate"):
            store.drop()
        retriever.close()
    return rows


def colbert_section(data, qids, tmp: Path, server: _bench.WeaviateServer) -> list[dict]:
    from ragembed import ColBERTEmbedder

    colbert = ColBERTEmbedder(show_progress=True)
    colbert.embed_documents([d.text for d in data.corpus])  # warm the cache
    rows, truth = [], None
    for mode, make in {
        "memory": lambda: MemoryStore(),
        "qdrant-edge": lambda: QdrantEdgeStore(tmp / "edge-colbert", "bench"),
        "weaviate-muvera": lambda: WeaviateStore(server.url, "BenchMuvera", grpc_port=server.grpc_port, muvera=True),
    }.items():
        store = make()
        store.drop()
        retriever = Retriever(store, "colbert", multivector_embedder=colbert, passages=False)
        started = time.perf_counter()
        retriever.index(data.corpus)
        found = _bench.measure_strategies(
            retriever, ["colbert"], data, qids, truth, mode, time.perf_counter() - started, exact_of
        )
        truth = truth or {"colbert": found[0]["top10"]}
        rows += found
        if mode.startswith("weaviate"):
            store.drop()
        retriever.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(REPO / "data/scifact"))
    parser.add_argument("--output", default="runs/weaviate_modes.json")
    parser.add_argument("--skip-colbert", action="store_true", help="leave out the ColBERT/MUVERA part")
    args = parser.parse_args()
    data = load_beir(args.data, "test")
    qids = list(data.queries)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        server = _bench.WeaviateServer(tmp / "weaviate")
        try:
            rows = dense_section(data, qids, tmp, server)
            if not args.skip_colbert:
                rows += colbert_section(data, qids, tmp, server)
        finally:
            server.stop()
    print(f"\nSciFact: {len(data.corpus)} documents, {len(qids)} queries, k=100")
    print(
        f"{'mode':<19}{'strategy':<16}{'ingest docs/s':>14}{'p50 ms':>9}{'p95 ms':>9}{'nDCG@10':>9}{'R@10/exact':>11}"
    )
    for r in rows:
        recall = "" if r["recall@10_vs_exact"] is None else f"{r['recall@10_vs_exact']:.3f}"
        print(
            f"{r['mode']:<19}{r['strategy']:<16}{r['ingest_docs_per_s']:>14.0f}{r['p50_ms']:>9.2f}"
            f"{r['p95_ms']:>9.2f}{r['ndcg@10']:>9.4f}{recall:>11}"
        )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps([{k: v for k, v in r.items() if k != "top10"} for r in rows], indent=1))


if __name__ == "__main__":
    main()
