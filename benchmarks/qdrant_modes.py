"""Ingest throughput, query latency and quality per store mode and strategy on BEIR SciFact.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/qdrant_modes.py [--data data/scifact] [--output runs/qdrant_modes.json]

Modes: the exact memory store (the reference), qdrant-client local mode, the embedded Qdrant
Edge engine (default thresholds: exact full scans at this size), Qdrant Edge with HNSW and
quantized indexes forced (indexing threshold 64 KB), and a Qdrant server when $QDRANT_URL is set.
Embeddings come from ragembed's cache (the first run encodes the corpus: minutes on a CPU), so
ingest measures the store, not the model. Latency is per query, one query at a time, end to end
through Retriever.search (query embeddings cached; add the model's own query encoding time,
printed below, for a cold query). Recall@10 is against exact dense search in the memory store.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from ragembed import DenseEmbedder, MemoryStore, Retriever
from ragembed.embedders.sparse import BM25Embedder
from ragembed.evaluation import ir_metrics, load_beir, run_from_hits
from ragembed.stores.qdrant import QdrantStore
from ragembed.stores.qdrant_edge import QdrantEdgeStore

STRATEGIES = ["dense", "int8", "binary", "funnel:64", "bm25", "hybrid"]


def modes(tmp: Path) -> dict:
    found = {
        "memory": lambda: MemoryStore(),
        "qdrant-local": lambda: QdrantStore("bench", path=":memory:"),
        "qdrant-edge": lambda: QdrantEdgeStore(tmp / "edge", "bench"),
        "qdrant-edge-hnsw": lambda: QdrantEdgeStore(tmp / "edge-hnsw", "bench", indexing_threshold_kb=64),
    }
    if os.environ.get("QDRANT_URL"):
        found["qdrant-server"] = lambda: QdrantStore("ragembed_bench", url=os.environ["QDRANT_URL"],
                                                     api_key=os.environ.get("QDRANT_API_KEY"))
    return found


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / "data/scifact"))
    parser.add_argument("--output", default="runs/qdrant_modes.json")
    args = parser.parse_args()
    data = load_beir(args.data, "test")
    qids = list(data.queries)
    queries = [data.queries[q] for q in qids]
    dense, bm25 = DenseEmbedder(show_progress=True), BM25Embedder()
    dense.embed_documents([d.text for d in data.corpus])  # warm the cache: ingest measures stores only

    started = time.perf_counter()
    DenseEmbedder(cache=False).embed_queries(queries[:50])
    encode_ms = 1000 * (time.perf_counter() - started) / 50

    truth = None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode, make in modes(Path(tmp)).items():
            retriever = Retriever(make(), STRATEGIES, embedder=dense, sparse_embedder=bm25)
            started = time.perf_counter()
            retriever.index(data.corpus)
            ingest_s = time.perf_counter() - started
            for strategy in STRATEGIES:
                retriever.search(queries[0], k=100, strategy=strategy)  # warm-up
                latencies, results = [], []
                for text in queries:
                    t0 = time.perf_counter()
                    results.append(retriever.search(text, k=100, strategy=strategy))
                    latencies.append(1000 * (time.perf_counter() - t0))
                top10 = [{h.id for h in hits[:10]} for hits in results]
                if truth is None:
                    truth = top10  # memory store, exact dense: the first run
                _, metrics = ir_metrics(run_from_hits(dict(zip(qids, results))), data.qrels, ["ndcg@10"])
                rows.append({"mode": mode, "strategy": strategy, "ingest_s": ingest_s,
                             "ingest_points_per_s": len(data.corpus) / ingest_s,
                             "p50_ms": statistics.median(latencies), "p95_ms": percentile(latencies, 95),
                             "ndcg@10": metrics["ndcg@10"],
                             "recall@10_vs_exact": sum(len(a & b) for a, b in zip(top10, truth)) / (10 * len(qids))})
            retriever.close()

    print(f"\nSciFact: {len(data.corpus)} documents, {len(qids)} queries, k=100; cold query encoding {encode_ms:.1f} ms")
    print(f"{'mode':<18}{'strategy':<11}{'ingest pts/s':>13}{'p50 ms':>9}{'p95 ms':>9}{'nDCG@10':>9}{'R@10/exact':>11}")
    for r in rows:
        print(f"{r['mode']:<18}{r['strategy']:<11}{r['ingest_points_per_s']:>13.0f}{r['p50_ms']:>9.2f}"
              f"{r['p95_ms']:>9.2f}{r['ndcg@10']:>9.4f}{r['recall@10_vs_exact']:>11.3f}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"query_encoding_ms": encode_ms, "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
