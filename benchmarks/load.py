"""Load: concurrent clients search one collection per backend for a fixed time, in three modes:
"threads" (--clients threads calling Retriever.search), "asyncio-threads" (--async-clients asyncio
tasks each awaiting asyncio.to_thread(Retriever.search), how async code calls a blocking client)
and "asyncio" (as many tasks awaiting Retriever.asearch, natively async where the store is:
store.capabilities.native_async); per backend and mode the searches done, errors, answers that differ from a
lone client's, queries/s and p50/p95/p99.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/load.py [--data data/scifact] [--clients 8]
        [--async-clients 64] [--seconds 60] [--backends memory,qdrant-local,qdrant-edge,qdrant-server,
        qdrant-server-grpc,qdrant-cluster,
        weaviate,weaviate-embedded,weaviate-cluster] [--output runs/load.json]

Each backend holds the whole corpus with dense vectors (HNSW where the engine has it; Qdrant
local mode and the memory store scan exactly). Queries are the dataset's, drawn at random by
each client; their embeddings are cached first, so the load falls on the stores and the
Retriever, not on the model. qdrant-server talks HTTP to the server, qdrant-server-grpc gRPC
(prefer_grpc=True); "client CPU" and "server CPU" are the CPU time a search costs in this process
and in the server processes. "differs" counts answers whose top-10 ids are not the ones the same
query got from a single client before the load: concurrency must not change results.
Servers: $QDRANT_URL / $WEAVIATE_URL, else servers this script starts with scripts/qdrant.sh and
scripts/weaviate.sh (build them once). Clusters: 3 nodes on loopback started by the same scripts;
the collection has 6 shards x 2 replicas on Qdrant, 3 x 2 on Weaviate, searched through node 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _bench

from ragembed import DenseEmbedder, MemoryStore, Retriever
from ragembed.evaluation import load_beir

BACKENDS = [
    "memory",
    "qdrant-local",
    "qdrant-edge",
    "qdrant-server",
    "qdrant-server-grpc",
    "qdrant-cluster",
    "weaviate",
    "weaviate-embedded",
    "weaviate-cluster",
]
K = 10


def open_store(backend: str, folder: Path, server: Callable[[str], Any]) -> Any:
    if backend == "memory":
        return MemoryStore()
    if backend == "qdrant-local":
        from ragembed.stores.qdrant import QdrantStore

        return QdrantStore("load", path=":memory:")
    if backend == "qdrant-edge":
        from ragembed.stores.qdrant import QdrantEdgeStore

        return QdrantEdgeStore(folder / "edge", "load")
    if backend in ("qdrant-server", "qdrant-server-grpc", "qdrant-cluster"):
        from ragembed.stores.qdrant import QdrantStore

        if backend != "qdrant-cluster":
            qdrant = server("qdrant")
            store = QdrantStore(
                "ragembed_load",
                url=qdrant.url,
                api_key=os.environ.get("QDRANT_API_KEY") or None,
                prefer_grpc=backend == "qdrant-server-grpc",
                grpc_port=qdrant.grpc_port,
            )
        else:
            store = QdrantStore(
                "ragembed_load", url=server("qdrant-cluster").urls[1], shard_number=6, replication_factor=2
            )
        store.drop()  # a fresh collection each run
        return store
    from ragembed.stores.weaviate import WeaviateStore

    if backend == "weaviate":
        return WeaviateStore(server("weaviate").url, "Load", grpc_port=server("weaviate").grpc_port)
    if backend == "weaviate-cluster":
        cluster = server("weaviate-cluster")
        store = WeaviateStore(cluster.urls[1], "Load", grpc_port=cluster.grpc_ports[1], shards=3, replicas=2)
        store.drop()
        return store
    return WeaviateStore.embedded(folder / "weaviate-embedded", "Load")


class Tally:
    """What the clients of one run saw; appended to from many threads under one lock."""

    def __init__(self, expected: list[list[str]]) -> None:
        self.expected, self.lock = expected, threading.Lock()
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.differs = 0

    def record(self, query: int, started: float, hits: Any = None, error: BaseException | None = None) -> None:
        elapsed = 1000 * (time.perf_counter() - started)
        with self.lock:
            if error is not None:
                self.errors.append(f"{type(error).__name__}: {str(error)[:200]}")
                return
            self.latencies.append(elapsed)
            self.differs += [h.id for h in hits] != self.expected[query]

    def row(self, backend: str, mode: str, clients: int, seconds: float) -> dict[str, Any]:
        done = len(self.latencies)
        return {
            "backend": backend,
            "mode": mode,
            "clients": clients,
            "searches": done,
            "errors": len(self.errors),
            "differs": self.differs,
            "qps": done / seconds,
            "p50_ms": _bench.percentile(self.latencies, 50) if done > 1 else None,
            "p95_ms": _bench.percentile(self.latencies, 95) if done > 1 else None,
            "p99_ms": _bench.percentile(self.latencies, 99) if done > 1 else None,
            "first_errors": sorted(set(self.errors))[:3],
        }


def threaded(retriever: Retriever, queries: list[str], tally: Tally, clients: int, seconds: float) -> float:
    deadline = time.perf_counter() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while time.perf_counter() < deadline:
            q, started = rng.randrange(len(queries)), time.perf_counter()
            try:
                tally.record(q, started, retriever.search(queries[q], k=K))
            except Exception as exc:
                tally.record(q, started, error=exc)

    started = time.perf_counter()
    workers = [threading.Thread(target=client, args=(seed,)) for seed in range(clients)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - started


def asynchronous(search: Callable[[Retriever, str], Any]) -> Callable[..., float]:
    """A load of asyncio tasks, each awaiting `search(retriever, query)` in turn."""

    def load(retriever: Retriever, queries: list[str], tally: Tally, clients: int, seconds: float) -> float:
        async def client(seed: int, deadline: float) -> None:
            rng = random.Random(seed)
            while time.perf_counter() < deadline:
                q, started = rng.randrange(len(queries)), time.perf_counter()
                try:
                    tally.record(q, started, await search(retriever, queries[q]))
                except Exception as exc:
                    tally.record(q, started, error=exc)

        async def run() -> float:
            started = time.perf_counter()
            await asyncio.gather(*(client(seed, started + seconds) for seed in range(clients)))
            return time.perf_counter() - started

        return asyncio.run(run())

    return load


# The server each backend searches (the names `server()` starts).
SERVERS = {
    "qdrant-server": "qdrant",
    "qdrant-server-grpc": "qdrant",
    "qdrant-cluster": "qdrant-cluster",
    "weaviate": "weaviate",
    "weaviate-cluster": "weaviate-cluster",
}


def server_pids(backend: str, server: Callable[[str], Any]) -> list[int] | None:
    """The engine's own processes: [] where it runs inside this one (memory, local mode, Edge),
    None where its CPU time cannot be read (embedded Weaviate's child, a server given by URL)."""
    if backend in SERVERS:
        return server(SERVERS[backend]).pids or None
    return None if backend == "weaviate-embedded" else []


def client_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def cpu_use(before: tuple[float, float], pids: list[int] | None, searches: int, elapsed: float) -> dict[str, Any]:
    """CPU time per search, in this process (Retriever, client library, in-process engines) and in
    the server processes, and how many cores the two kept busy: on a saturated machine the
    throughput is the cores over the CPU a search costs, whichever way the client waits."""
    client = client_cpu_seconds() - before[0]
    server = _bench.cpu_seconds(pids) - before[1] if pids is not None else None
    per = 1000 / max(searches, 1)
    return {
        "client_cpu_ms": client * per,
        "server_cpu_ms": server * per if server is not None else None,
        "cores_busy": (client + server) / elapsed if server is not None else None,
    }


MODES = {
    "threads": threaded,
    "asyncio-threads": asynchronous(lambda r, q: asyncio.to_thread(r.search, q, k=K)),
    "asyncio": asynchronous(lambda r, q: r.asearch(q, k=K)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(_bench.SCIFACT))
    parser.add_argument("--clients", type=int, default=8, help="threads")
    parser.add_argument("--async-clients", type=int, default=64, help="asyncio tasks")
    parser.add_argument("--seconds", type=float, default=60.0, help="per backend and mode")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--output", default="runs/load.json")
    args = parser.parse_args()
    backends = args.backends.split(",")
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backends {sorted(unknown)}; choose from {BACKENDS}")

    data = load_beir(args.data)
    queries = list(data.queries.values())
    embedder = DenseEmbedder()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ragembed-load-") as tmp:
        servers: dict[str, Any] = {}
        makers = {
            "weaviate": lambda: _bench.WeaviateServer(Path(tmp) / "weaviate-server"),
            "qdrant": lambda: _bench.QdrantServer(Path(tmp) / "qdrant-server"),
            "qdrant-cluster": lambda: _bench.Cluster("qdrant", Path(tmp) / "qdrant-cluster"),
            "weaviate-cluster": lambda: _bench.Cluster("weaviate", Path(tmp) / "weaviate-cluster"),
        }

        def server(kind: str) -> Any:
            if kind not in servers:
                servers[kind] = makers[kind]()
            return servers[kind]

        try:
            for backend in backends:
                retriever = Retriever(
                    open_store(backend, Path(tmp), server), "dense", embedder=embedder, passages=False
                )
                retriever.index(data.corpus)
                expected = [[h.id for h in hits] for hits in retriever.search_many(queries, k=K)]
                pids = server_pids(backend, server)
                for mode, load in MODES.items():
                    clients = args.clients if mode == "threads" else args.async_clients
                    tally = Tally(expected)
                    before = client_cpu_seconds(), _bench.cpu_seconds(pids or [])
                    elapsed = load(retriever, queries, tally, clients, args.seconds)
                    rows.append(tally.row(backend, mode, clients, elapsed))
                    rows[-1].update(cpu_use(before, pids, len(tally.latencies), elapsed))
                    print(rows[-1])
                retriever.close()
        finally:
            for s in servers.values():
                s.stop()

    print(
        f"\n{args.clients} threads or {args.async_clients} asyncio tasks x {args.seconds:.0f} s per backend and mode, "
        f"{len(data.corpus)} documents, "
        f"{len(queries)} distinct queries, k={K}; {_bench.machine()}"
    )
    print(
        _bench.table(
            rows,
            [
                ("backend", "backend", ""),
                ("mode", "mode", ""),
                ("clients", "clients", "d"),
                ("searches", "searches", "d"),
                ("errors", "errors", "d"),
                ("differs", "differs", "d"),
                ("qps", "queries/s", ".0f"),
                ("p50_ms", "p50 ms", ".1f"),
                ("p95_ms", "p95 ms", ".1f"),
                ("p99_ms", "p99 ms", ".1f"),
                ("client_cpu_ms", "client CPU ms/query", ".2f"),
                ("server_cpu_ms", "server CPU ms/query", ".2f"),
                ("cores_busy", "cores busy", ".2f"),
            ],
        )
    )
    _bench.write_json(
        args.output,
        {
            "clients": args.clients,
            "async_clients": args.async_clients,
            "seconds": args.seconds,
            "documents": len(data.corpus),
            "queries": len(queries),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
