"""Dense query strategies at scale: exact float32, int8, binary -> rescore and the Matryoshka
funnel at N = 10k and 100k vectors (1M opt-in), on ragembed's exact store and on Qdrant Edge.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/dense_scale.py [--sizes 10000,100000]
        [--queries 300] [--output runs/dense_scale.json]
    ... --sizes 1000000 --queries 100   # opt-in: 29 minutes on 2 cores (Edge's five HNSW builds:
                                        # 20); Edge's mapped files count in the RSS
    ... --memory-only                   # the exact memory store alone (1M: 5 minutes)
    ... --qdrant-server                 # also a Qdrant server ($QDRANT_URL, else one started by
                                        # scripts/qdrant.sh), searched once its indexes are built

Vectors: SciFact's own all-MiniLM-L6-v2 embeddings (5,183 abstracts) are the seeds; vector i is seed
(i mod 5,183) plus Gaussian noise (sigma 0.03 per dimension, about 0.6 of the seed's norm),
renormalised: clusters like those of text embeddings, though at 1M each abstract has about 193
near-copies, more alike than a real corpus (`--random` uses random unit vectors instead). Queries:
SciFact's test queries, embedded by the same model. Recall@10 is against exact float32 search over
the same vectors (the memory store's `dense`). Latency: one query at a time through Retriever.search
(the query vector looked up, not encoded), k=10; qps = queries / total time. Warm-up: one query on
the memory store; on Qdrant Edge one untimed pass over all queries, since its rescoring reads
float32 originals from memory-mapped files and the first pass measures the disk (steady state is
what a server sees).

Binary strategies: `binary` scores the query's own values against the documents' sign bits
(asymmetric; Qdrant's query_encoding scalar8bits), `binary:hamming` reduces the query to bits
too. Both rescore 10 x k candidates with float32 by default; "x30/x60/x100" rescore more.

Stores: `memory` is ragembed's exact numpy store (full scans: float32 matrix product, int8
scan, binary scan of the unpacked bits or by Hamming distance, then float32 rescoring);
`qdrant-edge` is the Qdrant engine in-process, which builds an HNSW graph per named vector once
a segment passes 10 MB, and searches int8/binary with Qdrant's own quantization and rescoring;
`qdrant-server` the same engine as a server over HTTP (it builds its indexes in the background;
the benchmark waits until the collection reports green before it searches), plus the server's own exact search of the
float32 field ("dense exact=True": qdrant-client's query_points with SearchParams(exact=True)).
Bytes/vector is what
the first stage scans; every rescoring strategy also keeps the float32 vector (1,536 bytes).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from functools import partial
from pathlib import Path

import _bench
import numpy as np
from qdrant_client import models

from ragembed import DenseEmbedder, Document, MemoryStore, Retriever
from ragembed.embedders.base import Embedder
from ragembed.evaluation import load_beir
from ragembed.stores.qdrant import QdrantEdgeStore, QdrantStore
from ragembed.strategies import Quantized
from ragembed.types import DenseEmbeddings, EmbeddingKind, Precision

STRATEGIES = ["dense", "int8", "binary", "binary:hamming", "funnel:64"]
# Measured as well: binary with more oversampling (30, 60, 100 x k candidates rescored; default 10).
VARIANTS = {f"binary x{n}": Quantized(Precision.BINARY, oversampling=n) for n in (30, 60, 100)}
VARIANTS["binary:hamming x30"] = Quantized(Precision.BINARY, oversampling=30, asymmetric=False)
SCANNED_BYTES = {"dense": 1536, "int8": 384, "funnel:64": 256} | {
    s: 48 for s in ["binary", "binary:hamming", *VARIANTS]
}


class LookupEmbedder(Embedder):
    """Serves precomputed vectors: document "v<i>" is row i, a query text maps to its vector.
    It lets the benchmark go through the Retriever (the user path) without a model."""

    kind = EmbeddingKind.DENSE

    def __init__(self, vectors: np.ndarray, queries: dict[str, np.ndarray]) -> None:
        super().__init__(cache=False)
        self.vectors, self.queries = vectors, queries

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def identity(self) -> str:
        return f"lookup|{len(self.vectors)}"

    def _encode(self, texts: list[str], role: str) -> DenseEmbeddings:
        if role == "query":
            return DenseEmbeddings(np.stack([self.queries[t] for t in texts]))
        return DenseEmbeddings(self.vectors[[int(t[1:]) for t in texts]])


def make_vectors(seeds: np.ndarray, n: int, random: bool, rng: np.random.Generator) -> np.ndarray:
    if random:
        out = rng.standard_normal((n, seeds.shape[1]), dtype=np.float32)
    else:
        out = seeds[np.arange(n) % len(seeds)] + 0.03 * rng.standard_normal((n, seeds.shape[1]), dtype=np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def server_store(server: _bench.QdrantServer, n: int) -> QdrantStore:
    store = QdrantStore(f"ragembed_scale_{n}", url=server.url, api_key=os.environ.get("QDRANT_API_KEY"))
    store.drop()  # a fresh collection each run
    return store


def wait_until_indexed(store: QdrantStore, timeout_s: float = 3600) -> None:
    """Until the server's optimizers have built every index (collection status green)."""
    deadline = time.monotonic() + timeout_s
    while store.client.get_collection(store.collection).status != models.CollectionStatus.GREEN:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{store!r} still indexing after {timeout_s:.0f} s")
        time.sleep(1)


def server_exact(store: QdrantStore, queries: dict[str, np.ndarray], text: str) -> list[str]:
    """The server's own exact search of the float32 field (search_params exact=True: a full scan,
    no HNSW), through qdrant-client directly: the reference the server's approximate rows beat."""
    found = store.client.query_points(
        store.collection,
        query=queries[text].tolist(),
        using="dense",
        limit=10,
        search_params=models.SearchParams(exact=True),
        with_payload=["doc_id"],
    )
    return [p.payload["doc_id"] for p in found.points if p.payload]


def run_size(
    n: int, seeds: np.ndarray, queries: dict[str, np.ndarray], args, tmp: Path, server: _bench.QdrantServer | None
) -> list[dict]:
    vectors = make_vectors(seeds, n, args.random, np.random.default_rng(n))
    embedder = LookupEmbedder(vectors, queries)
    docs = [Document(f"v{i}", f"v{i}") for i in range(n)]
    texts = list(queries)
    rows, truth = [], None
    stores = [("memory", MemoryStore())]  # first: the exact reference every recall is against
    if not args.memory_only:
        stores.append(("qdrant-edge", QdrantEdgeStore(tmp / f"edge-{n}", "bench")))
    if server is not None:
        stores.append(("qdrant-server", server_store(server, n)))
    for mode, store in stores:
        retriever = Retriever(store, STRATEGIES, embedder=embedder, passages=False)
        started = time.perf_counter()
        retriever.index(docs)
        if mode == "qdrant-server":
            wait_until_indexed(store)
        ingest_s = time.perf_counter() - started
        print(f"N={n} {mode}: indexed in {ingest_s:.1f} s", flush=True)
        for strategy in [*STRATEGIES, *VARIANTS]:
            search = partial(retriever.search, k=10, strategy=VARIANTS.get(strategy, strategy))
            hits, timing = _bench.timed_each(search, texts, warm_all=mode != "memory")
            top10 = [[h.id for h in found] for found in hits]
            truth = truth or top10  # the memory store's exact float32: the first measured
            rows.append(
                {
                    "N": n,
                    "store": mode,
                    "strategy": strategy,
                    "index_s": ingest_s,
                    "bytes_per_vector": SCANNED_BYTES[strategy],
                    **timing,
                    "recall@10_vs_exact": _bench.recall_vs(top10, truth),
                }
            )
            print(_bench.table(rows[-1:], COLUMNS).splitlines()[-1], flush=True)
        if mode == "qdrant-server":
            hits, timing = _bench.timed_each(partial(server_exact, store, queries), texts, warm_all=True)
            rows.append(
                {
                    "N": n,
                    "store": mode,
                    "strategy": "dense exact=True",
                    "index_s": ingest_s,
                    "bytes_per_vector": 1536,
                    **timing,
                    "recall@10_vs_exact": _bench.recall_vs(hits, truth),
                }
            )
            print(_bench.table(rows[-1:], COLUMNS).splitlines()[-1], flush=True)
        retriever.close()
    exact_ms = next(r["p50_ms"] for r in rows if r["store"] == "memory" and r["strategy"] == "dense")
    for r in rows:
        r["speedup_vs_exact_p50"] = exact_ms / r["p50_ms"]
    return rows


COLUMNS = [
    ("N", "N", ","),
    ("store", "store", ""),
    ("strategy", "strategy", ""),
    ("index_s", "index s", ".1f"),
    ("bytes_per_vector", "bytes/vec", "d"),
    ("p50_ms", "p50 ms", ".2f"),
    ("p95_ms", "p95 ms", ".2f"),
    ("qps", "qps", ".0f"),
    ("recall@10_vs_exact", "R@10 vs exact", ".3f"),
    ("speedup_vs_exact_p50", "x exact", ".1f"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(_bench.SCIFACT))
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated N (1000000 is opt-in)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--random", action="store_true", help="random unit vectors instead of SciFact-derived")
    parser.add_argument(
        "--memory-only", action="store_true", help="skip Qdrant Edge (its HNSW builds take most of the time)"
    )
    parser.add_argument("--qdrant-server", action="store_true", help="also a Qdrant server")
    parser.add_argument("--output", default="runs/dense_scale.json")
    args = parser.parse_args()
    data = load_beir(args.data, "test")
    dense = DenseEmbedder(show_progress=True)
    seeds = dense.embed_documents([d.text for d in data.corpus]).data  # cached after the first run
    texts = list(data.queries.values())[: args.queries]
    queries = dict(zip(texts, dense.embed_queries(texts).data))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = _bench.QdrantServer(Path(tmp) / "qdrant-server") if args.qdrant_server else None
        try:
            for n in (int(s) for s in args.sizes.split(",")):
                rows += run_size(n, seeds, queries, args, Path(tmp), server)
        finally:
            if server is not None:
                server.stop()
    print(
        f"\n{len(queries)} SciFact queries, k=10, {'random' if args.random else 'SciFact-derived'} "
        f"384-dim vectors, {_bench.machine()}"
    )
    print(_bench.table(rows, COLUMNS))
    _bench.write_json(args.output, {"vectors": "random" if args.random else "scifact-derived", "rows": rows})


if __name__ == "__main__":
    main()
