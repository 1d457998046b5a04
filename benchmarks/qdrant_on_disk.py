"""What `vectors_on_disk` saves on a Qdrant server: the same float32 dense collection loaded into
a fresh server twice, its vectors in RAM (Qdrant's default, what ragembed did before) and
memory-mapped from disk (QdrantStore(vectors_on_disk=True)), side by side in one run.

    .venv/bin/python benchmarks/qdrant_on_disk.py [--docs 100000] [--dim 384] [--output runs/qdrant_on_disk.json]

Vectors: seeded random unit vectors (the saving depends on the bytes, not on what they mean).
For each setting: a fresh server (scripts/qdrant.sh), upload over gRPC, wait until the HNSW index
is built, 200 warm-up queries, then 500 timed ones (k=10, one at a time). Memory, over the idle
server's, from /proc: anonymous resident memory (RssAnon: what the OS cannot take back) and
file-backed resident pages (RssFile: mapped files in the page cache, which the OS can evict
under pressure), once indexed and after the queries (docs/qdrant.md reads the figures).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _bench
import numpy as np

from ragembed import DenseEmbeddings, Document, Schema, VectorField, VectorSearch
from ragembed.stores.qdrant import QdrantStore
from ragembed.types import EmbeddingKind


def proc_memory(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) * 1024 / _bench.MB for key in ("RssAnon", "RssFile")}


def one_setting(on_disk: bool, vectors: np.ndarray, queries: np.ndarray, folder: Path) -> dict:
    # Always a server of its own (never $QDRANT_URL): the memory measured is its process's.
    url, _, grpc_port, _, _ = _bench.script("qdrant", "start", str(folder)).split()
    try:
        pid = int(_bench.script("qdrant", "status", str(folder)).split()[-1])
        idle = proc_memory(pid)
        store = QdrantStore(
            "on_disk_bench", url=url, prefer_grpc=True, grpc_port=int(grpc_port), vectors_on_disk=on_disk
        )
        store.ensure_schema(Schema((VectorField("dense", EmbeddingKind.DENSE, vectors.shape[1]),)))
        started = time.perf_counter()
        for start in range(0, len(vectors), 2000):
            rows = range(start, min(start + 2000, len(vectors)))
            docs = [Document(f"d{i}", f"document {i}") for i in rows]
            store.upsert(docs, {"dense": DenseEmbeddings(vectors[rows.start : rows.stop])})
        while store.client.get_collection("on_disk_bench").status != "green":
            time.sleep(1)
        build_s = time.perf_counter() - started
        indexed = proc_memory(pid)
        search = lambda q: store.search(VectorSearch("dense", DenseEmbeddings(q[None]), 10))
        for q in queries[:200]:
            search(q)
        results, timing = _bench.timed_each(search, queries[200:])
        exact = np.argsort(-(queries[200:] @ vectors.T), axis=1)[:, :10]
        recall = _bench.recall_vs([[h.id for h in r] for r in results], [[f"d{i}" for i in row] for row in exact])
        loaded = proc_memory(pid)
        store.close()
        return {
            "setting": "vectors_on_disk=True (memory-mapped)" if on_disk else "in RAM (Qdrant's default)",
            "rss_anon_mb": loaded["RssAnon"] - idle["RssAnon"],
            "rss_file_indexed_mb": indexed["RssFile"] - idle["RssFile"],
            "rss_file_mb": loaded["RssFile"] - idle["RssFile"],
            "recall@10": recall,
            "build_s": build_s,
            **timing,
        }
    finally:
        _bench.script("qdrant", "stop", str(folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--output", default="runs/qdrant_on_disk.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.docs, args.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # queries near stored vectors (noise of norm 0.2), so the top 10 stand out from random data
    queries = vectors[rng.choice(args.docs, 700)] + 0.01 * rng.standard_normal((700, args.dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [one_setting(on_disk, vectors, queries, Path(tmp) / str(on_disk)) for on_disk in (False, True)]
    resident = {
        key: (rows[0][key] - rows[1][key]) * _bench.MB / args.docs for key in ("rss_file_indexed_mb", "rss_file_mb")
    }
    print(f"\nQdrant server, {args.docs:,} float32 vectors of {args.dim} dims, k=10, {_bench.machine()}")
    print(
        _bench.table(
            rows,
            [
                ("setting", "setting", ""),
                ("rss_anon_mb", "RssAnon MB", ".0f"),
                ("rss_file_indexed_mb", "RssFile MB indexed", ".0f"),
                ("rss_file_mb", "RssFile MB after queries", ".0f"),
                ("recall@10", "recall@10", ".3f"),
                ("p50_ms", "p50 ms", ".2f"),
                ("p95_ms", "p95 ms", ".2f"),
                ("build_s", "load+index s", ".1f"),
            ],
        )
    )
    print(
        f"\nresident bytes a document fewer with vectors_on_disk (the float32 vector is {4 * args.dim}): "
        f"{resident['rss_file_indexed_mb']:.0f} once indexed, {resident['rss_file_mb']:.0f} after the queries"
    )
    _bench.write_json(
        args.output, {"docs": args.docs, "dim": args.dim, "fewer_resident_bytes_per_doc": resident, "rows": rows}
    )


if __name__ == "__main__":
    main()
