"""Queries/s of a batch of searches: one engine request per query (what `search_many` sent before
it was batched) beside `VectorStore.search_many` (one request per stage for the whole batch where
the engine batches), sync and async, on BEIR SciFact's 300 test queries, per store.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/search_many.py [--data data/scifact]
        [--stores memory,qdrant-edge,qdrant-server,weaviate] [--strategies dense,hybrid] [--k 10]
        [--rounds 3] [--output runs/search_many.json]

Strategies a store cannot serve are skipped, and said so (Weaviate stores no sparse vectors: no
hybrid). The plans are made once (`Retriever.plans`: query embeddings from the cache), so only the store's
side is timed: per query, `[store.search(plan) for plan in plans]` and, async, `asyncio.gather` of
`store.asearch` per plan; batched, `store.search_many(plans)` and `store.asearch_many(plans)`.
Each figure is the best of `--rounds` passes over all queries (after one untimed pass). Both ways
must return the same hits (checked). A Qdrant server ($QDRANT_URL, else one from
scripts/qdrant.sh) and Weaviate ($WEAVIATE_URL, else scripts/weaviate.sh) are started when asked
for and stopped after.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _bench

from ragembed import DenseEmbedder, MemoryStore, Retriever, parse_strategy
from ragembed.embedders.sparse import BM25Embedder
from ragembed.evaluation import load_beir
from ragembed.stores.base import VectorStore

STORES = ["memory", "qdrant-edge", "qdrant-server", "weaviate"]


def best_qps(run: Callable[[], Any], n: int, rounds: int) -> tuple[float, Any]:
    """Queries/s of the fastest of `rounds` timed calls (after an untimed one), and its answer."""
    answer = run()
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        answer = run()
        best = min(best, time.perf_counter() - started)
    return n / best, answer


def measure(store: VectorStore, plans: list, rounds: int, loop: asyncio.AbstractEventLoop) -> dict[str, float]:
    one_by_one, a = best_qps(lambda: [store.search(p) for p in plans], len(plans), rounds)
    batched, b = best_qps(lambda: store.search_many(plans), len(plans), rounds)

    async def gathered() -> list:
        return list(await asyncio.gather(*(store.asearch(p) for p in plans)))

    async_one_by_one, c = best_qps(lambda: loop.run_until_complete(gathered()), len(plans), rounds)
    async_batched, d = best_qps(lambda: loop.run_until_complete(store.asearch_many(plans)), len(plans), rounds)
    for answer in (b, c, d):  # the same hits whichever way they were asked for
        assert [[h.id for h in hits] for hits in answer] == [[h.id for h in hits] for hits in a]
    return {
        "sync_per_query": one_by_one,
        "sync_batched": batched,
        "async_gather": async_one_by_one,
        "async_batched": async_batched,
    }


def open_stores(names: list[str], tmp: Path) -> tuple[dict[str, Callable[[], VectorStore]], list[Any]]:
    makers: dict[str, Callable[[], VectorStore]] = {}
    servers: list[Any] = []
    if "memory" in names:
        makers["memory"] = MemoryStore
    if "qdrant-edge" in names:
        from ragembed.stores.qdrant import QdrantEdgeStore

        makers["qdrant-edge"] = lambda: QdrantEdgeStore(tmp / "edge", "bench")
    if "qdrant-server" in names:
        from ragembed.stores.qdrant import QdrantStore

        qdrant = _bench.QdrantServer(tmp / "qdrant")
        servers.append(qdrant)
        makers["qdrant-server"] = lambda: QdrantStore("ragembed_search_many", url=qdrant.url)
    if "weaviate" in names:
        from ragembed.stores.weaviate import WeaviateStore

        weaviate = _bench.WeaviateServer(tmp / "weaviate")
        servers.append(weaviate)
        makers["weaviate"] = lambda: WeaviateStore(weaviate.url, "SearchMany", grpc_port=weaviate.grpc_port)
    return makers, servers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(_bench.SCIFACT))
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--strategies", default="dense,hybrid")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default="runs/search_many.json")
    args = parser.parse_args()
    names, strategies = args.stores.split(","), args.strategies.split(",")
    unknown = set(names) - set(STORES)
    if unknown:
        parser.error(f"unknown stores {sorted(unknown)}; choose from {STORES}")
    data = load_beir(args.data, "test")
    queries = list(data.queries.values())
    dense, bm25 = DenseEmbedder(show_progress=True), BM25Embedder()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        makers, servers = open_stores(names, Path(tmp))
        try:
            for name, make in makers.items():
                store = make()
                if store.schema is not None:
                    store.drop()  # a fresh collection each run
                served = [s for s in strategies if set(parse_strategy(s).kinds) <= store.capabilities.kinds]
                if served != strategies:
                    print(f"{name}: skipped {sorted(set(strategies) - set(served))} (vectors it does not store)")
                retriever = Retriever(store, served, embedder=dense, sparse_embedder=bm25, passages=False)
                retriever.index(data.corpus)
                loop = asyncio.new_event_loop()  # the one loop the store's async client lives on
                try:
                    for strategy in served:
                        plans = retriever.plans(queries, k=args.k, strategy=strategy)
                        qps = measure(store, plans, args.rounds, loop)
                        rows.append({"store": name, "strategy": strategy, **qps})
                        rows[-1]["speedup"] = qps["sync_batched"] / qps["sync_per_query"]
                        print(rows[-1], flush=True)
                    if name in ("qdrant-server", "weaviate"):
                        store.drop()
                    loop.run_until_complete(store.aclose())
                finally:
                    loop.close()
        finally:
            for server in servers:
                server.stop()
    print(
        f"\nSciFact: {len(data.corpus)} documents, {len(queries)} queries, k={args.k}; queries/s, best of "
        f"{args.rounds}; {_bench.machine()}"
    )
    print(
        _bench.table(
            rows,
            [
                ("store", "store", ""),
                ("strategy", "strategy", ""),
                ("sync_per_query", "search x300 q/s", ".0f"),
                ("sync_batched", "search_many q/s", ".0f"),
                ("speedup", "x", ".2f"),
                ("async_gather", "gather(asearch) q/s", ".0f"),
                ("async_batched", "asearch_many q/s", ".0f"),
            ],
        )
    )
    _bench.write_json(args.output, {"k": args.k, "rounds": args.rounds, "runs": rows})


if __name__ == "__main__":
    main()
