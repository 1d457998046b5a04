"""Ingestion: ragembed into Qdrant (a Qdrant server over HTTP and over gRPC, qdrant-client local
mode, the Qdrant Edge engine) against LlamaIndex's QdrantVectorStore (llama-index-vector-stores-
qdrant) into the same server and local mode, with the same precomputed vectors; then the same
300 queries against each, to show they hold the same data. The server is $QDRANT_URL, else one
this script starts with scripts/qdrant.sh.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/ingest.py [--copies 4] [--output runs/ingest.json]

Points: the SciFact corpus (5,183 abstracts, all-MiniLM-L6-v2, 384 dims) --copies times under new
ids (20,732 points by default; copies carry slight noise so no scores tie), so each run lasts
seconds, not milliseconds. Vectors are computed once beforehand (ragembed's embeddings cache) and
documents/nodes are built before the clock starts: the timings hold only the library and the engine.
ragembed is measured two ways: `Retriever.index` (the user path: vectors read back from the
embeddings cache, upserted in batches of 1,000, then `optimize`, which on Qdrant Edge builds the
HNSW index; copies are exact duplicates there) and `store.upsert` with the same vectors as
LlamaIndex, in the same batches, then `optimize`. Queries: top-10 for SciFact's 300 test queries
with query vectors precomputed, against exact search over the same points (recall@10).
LlamaIndex: `QdrantVectorStore.add(nodes)` with each node's embedding set, at its default batch size (64) and at 1,000.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

import _bench
import numpy as np

from ragembed import DenseEmbedder, Document, MemoryStore, Retriever, Schema
from ragembed.evaluation import load_beir
from ragembed.stores.qdrant import QdrantEdgeStore, QdrantStore
from ragembed.strategies import Dense
from ragembed.types import DenseEmbeddings

BATCH = 1000  # ragembed's Retriever.index batch


def upsert_all(store, docs, vectors, dense) -> float:
    """store.upsert in Retriever-sized batches, then optimize; the seconds it took."""
    store.ensure_schema(Schema(tuple(Dense().fields({dense.kind: vectors}))))
    started = time.perf_counter()
    for start in range(0, len(docs), BATCH):
        rows = range(start, min(start + BATCH, len(docs)))
        store.upsert(docs[start : rows.stop], {"dense": vectors.take(rows)})
    store.optimize()
    return time.perf_counter() - started


def on_server(server, name: str, grpc: bool) -> QdrantStore:
    store = QdrantStore(name, url=server.url, prefer_grpc=grpc, grpc_port=server.grpc_port)
    store.drop()
    return store


def ragembed_rows(docs, vectors, queries, truth, dense, tmp: Path, server) -> list[dict]:
    rows = []
    makers = {
        "Qdrant server, HTTP": lambda tag: on_server(server, f"bench_http_{tag}", grpc=False),
        "Qdrant server, gRPC": lambda tag: on_server(server, f"bench_grpc_{tag}", grpc=True),
        "qdrant-client local (:memory:)": lambda tag: QdrantStore(f"bench_{tag}", path=":memory:"),
        "Qdrant Edge (HNSW built)": lambda tag: QdrantEdgeStore(tmp / f"edge-{tag}", "bench"),
    }
    for engine, make in makers.items():
        # The user path; its vectors come from the embeddings cache, so copies are exact duplicates
        # there: timed for ingest only.
        retriever = Retriever(make("retriever"), "dense", embedder=dense, passages=False)
        started = time.perf_counter()
        retriever.index(docs)
        elapsed = time.perf_counter() - started
        rows.append(
            {
                "library": "ragembed Retriever.index",
                "engine": engine,
                "points": len(docs),
                "seconds": elapsed,
                "points_per_s": len(docs) / elapsed,
            }
        )
        retriever.close()

        store = make("upsert")
        elapsed = upsert_all(store, docs, vectors, dense)
        searcher = Retriever(store, "dense", embedder=dense)  # query vectors from the cache
        hits, timing = _bench.timed_each(partial(searcher.search, k=10), queries)
        rows.append(
            {
                "library": "ragembed store.upsert",
                "engine": engine,
                "points": len(docs),
                "seconds": elapsed,
                "points_per_s": len(docs) / elapsed,
                **timing,
                "recall@10_vs_exact": _bench.recall_vs([[h.id for h in found] for found in hits], truth),
            }
        )
        searcher.close()
    return rows


def llamaindex_rows(docs, vectors, query_vectors, truth, server) -> list[dict]:
    from llama_index.core.schema import TextNode
    from llama_index.core.vector_stores.types import VectorStoreQuery
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    # Qdrant point ids are UUIDs or integers; ragembed maps any string id to a uuid5 itself.
    point_id = {d.id: str(uuid.uuid5(uuid.NAMESPACE_URL, d.id)) for d in docs}
    back = {v: k for k, v in point_id.items()}
    rows = []
    clients = {
        "Qdrant server, HTTP": lambda: QdrantClient(url=server.url),
        "Qdrant server, gRPC": lambda: QdrantClient(url=server.url, prefer_grpc=True, grpc_port=server.grpc_port),
        "qdrant-client local (:memory:)": lambda: QdrantClient(location=":memory:"),
    }
    for (engine, client), batch_size in ((c, b) for c in clients.items() for b in (64, BATCH)):
        nodes = [
            TextNode(id_=point_id[d.id], text=d.text, embedding=vec.tolist()) for d, vec in zip(docs, vectors.data)
        ]
        collection = f"llamaindex_{batch_size}_{'grpc' if 'gRPC' in engine else 'http'}"
        made = client()
        if made.collection_exists(collection):
            made.delete_collection(collection)
        store = QdrantVectorStore(client=made, collection_name=collection, batch_size=batch_size)
        started = time.perf_counter()
        store.add(nodes)
        elapsed = time.perf_counter() - started
        queries = [q.tolist() for q in query_vectors]
        found, timing = _bench.timed_each(
            lambda q, store=store: store.query(VectorStoreQuery(query_embedding=q, similarity_top_k=10)), queries
        )
        rows.append(
            {
                "library": f"LlamaIndex QdrantVectorStore.add (batch {batch_size})",
                "engine": engine,
                "points": len(docs),
                "seconds": elapsed,
                "points_per_s": len(docs) / elapsed,
                **timing,
                "recall@10_vs_exact": _bench.recall_vs([[back[i] for i in r.ids] for r in found], truth),
            }
        )
        store.client.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(_bench.SCIFACT))
    parser.add_argument("--copies", type=int, default=4, help="corpus copies under new ids (default 4)")
    parser.add_argument("--output", default="runs/ingest.json")
    args = parser.parse_args()
    data = load_beir(args.data, "test")
    dense = DenseEmbedder(show_progress=True)
    base = dense.embed_documents([d.text for d in data.corpus])  # cached after the first run
    docs = [Document(f"{d.id}#{c}" if c else d.id, d.text) for c in range(args.copies) for d in data.corpus]
    # Copies get a little noise (sigma 0.002 per dimension), so no two points tie: with exact ties
    # the engines' order among equal scores, not their data, would decide recall.
    tiled = np.tile(base.data, (args.copies, 1))
    tiled[len(base.data) :] += 0.002 * np.random.default_rng(0).standard_normal(
        tiled[len(base.data) :].shape, dtype=np.float32
    )
    vectors = DenseEmbeddings(tiled / np.linalg.norm(tiled, axis=1, keepdims=True))
    queries = list(data.queries.values())
    query_vectors = dense.embed_queries(queries).data

    exact = MemoryStore()
    upsert_all(exact, docs, vectors, dense)
    truth_retriever = Retriever(exact, "dense", embedder=dense)
    truth = [[h.id for h in truth_retriever.search(q, k=10)] for q in queries]

    with tempfile.TemporaryDirectory() as tmp:
        server = _bench.QdrantServer(Path(tmp) / "qdrant-server")
        try:
            rows = ragembed_rows(docs, vectors, queries, truth, dense, Path(tmp), server)
            rows += llamaindex_rows(docs, vectors, query_vectors, truth, server)
        finally:
            server.stop()

    print(f"\n{len(docs)} points (SciFact x{args.copies}), 384-dim float32, {_bench.machine()}")
    print(
        _bench.table(
            rows,
            [
                ("library", "library", ""),
                ("engine", "engine", ""),
                ("points_per_s", "points/s", ".0f"),
                ("seconds", "s", ".2f"),
                ("p50_ms", "query p50 ms", ".2f"),
                ("p95_ms", "p95 ms", ".2f"),
                ("recall@10_vs_exact", "R@10 vs exact", ".3f"),
            ],
        )
    )
    _bench.write_json(args.output, {"points": len(docs), "rows": rows})


if __name__ == "__main__":
    main()
