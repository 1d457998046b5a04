"""Ingest throughput, query latency and quality per store mode and strategy on BEIR SciFact.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/qdrant_modes.py [--data data/scifact] [--modes memory,qdrant-edge,...]
        [--output runs/qdrant_modes.json]

Modes: the exact memory store (the reference), qdrant-client local mode, the embedded Qdrant
Edge engine (default thresholds: exact full scans at this size), Qdrant Edge with HNSW and
quantized indexes forced (indexing threshold 64 KB), and a Qdrant server ($QDRANT_URL, else one
this script starts with scripts/qdrant.sh) over HTTP, over gRPC, and with the collection in 3
shards (bm25 and hybrid weighted with collection-wide IDF by ragembed, fusion and rescoring
stages run one query each: exact, at the cost shown).
Embeddings come from ragembed's cache (the first run encodes the corpus: minutes on a CPU), so
ingest measures the store, not the model. Latency is per query, one query at a time, end to end
through Retriever.search (query embeddings cached; add the model's own query encoding time,
printed below, for a cold query). Recall@10 is against exact dense search in the memory store.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import _bench

from ragembed import DenseEmbedder, MemoryStore, Retriever
from ragembed.embedders.sparse import BM25Embedder
from ragembed.evaluation import load_beir
from ragembed.stores.qdrant import QdrantEdgeStore, QdrantStore

STRATEGIES = ["dense", "int8", "binary", "funnel:64", "bm25", "hybrid"]


def modes(tmp: Path, server: _bench.QdrantServer) -> dict:
    def on_server(name: str, **options) -> QdrantStore:
        store = QdrantStore(
            name, url=server.url, api_key=os.environ.get("QDRANT_API_KEY"), grpc_port=server.grpc_port, **options
        )
        store.drop()  # a fresh collection each run
        return store

    return {
        "memory": lambda: MemoryStore(),
        "qdrant-local": lambda: QdrantStore("bench", path=":memory:"),
        "qdrant-edge": lambda: QdrantEdgeStore(tmp / "edge", "bench"),
        "qdrant-edge-hnsw": lambda: QdrantEdgeStore(tmp / "edge-hnsw", "bench", indexing_threshold_kb=64),
        "qdrant-server": lambda: on_server("ragembed_bench"),
        "qdrant-server-grpc": lambda: on_server("ragembed_bench_grpc", prefer_grpc=True),
        "qdrant-server-3-shards": lambda: on_server("ragembed_bench_sharded", shard_number=3),
    }


def run_modes(makers: dict, strategies: list[str], dense, bm25, data, qids) -> list[dict]:
    truth, rows = None, []
    for mode, make in makers.items():
        retriever = Retriever(make(), strategies, embedder=dense, sparse_embedder=bm25, passages=False)
        started = time.perf_counter()
        retriever.index(data.corpus)
        found = _bench.measure_strategies(retriever, strategies, data, qids, truth, mode, time.perf_counter() - started)
        truth = truth or {r["strategy"]: r["top10"] for r in found}  # the memory store: exact
        rows += found
        retriever.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(_bench.SCIFACT))
    parser.add_argument(
        "--modes", default=None, help="comma-separated (default: all); memory, the exact reference, always runs first"
    )
    parser.add_argument("--output", default="runs/qdrant_modes.json")
    args = parser.parse_args()
    wanted = ["memory"] + [m for m in (args.modes or "").split(",") if m and m != "memory"]
    data = load_beir(args.data, "test")
    qids = list(data.queries)
    queries = [data.queries[q] for q in qids]
    dense, bm25 = DenseEmbedder(show_progress=True), BM25Embedder()
    dense.embed_documents([d.text for d in data.corpus])  # warm the cache: ingest measures stores only

    started = time.perf_counter()
    DenseEmbedder(cache=False).embed_queries(queries[:50])
    encode_ms = 1000 * (time.perf_counter() - started) / 50

    with tempfile.TemporaryDirectory() as tmp:
        server = _bench.QdrantServer(Path(tmp) / "qdrant-server")
        try:
            every = modes(Path(tmp), server)
            unknown = set(wanted) - set(every)
            if unknown:
                parser.error(f"unknown modes {sorted(unknown)}; choose from {list(every)}")
            chosen = every if args.modes is None else {m: every[m] for m in wanted}
            rows = run_modes(chosen, STRATEGIES, dense, bm25, data, qids)
        finally:
            server.stop()

    print(
        f"\nSciFact: {len(data.corpus)} documents, {len(qids)} queries, k=100; cold query encoding {encode_ms:.1f} ms"
    )
    print(
        _bench.table(
            rows,
            [
                ("mode", "mode", ""),
                ("strategy", "strategy", ""),
                ("ingest_docs_per_s", "ingest docs/s", ".0f"),
                ("p50_ms", "p50 ms", ".2f"),
                ("p95_ms", "p95 ms", ".2f"),
                ("ndcg@10", "nDCG@10", ".4f"),
                ("recall@10_vs_exact", "R@10/exact", ".3f"),
            ],
        )
    )
    _bench.write_json(
        args.output,
        {"query_encoding_ms": encode_ms, "runs": [{k: v for k, v in r.items() if k != "top10"} for r in rows]},
    )


if __name__ == "__main__":
    main()
