"""The store backends the contract suite runs against. A new adapter adds one entry here.

Each entry: `create` takes pytest's tmp_path and returns a fresh, empty store (one collection);
for stores that persist, `reopen`: after the test data is written the suite closes the store and
searches a reopened one, so every contract test also checks persistence. What a store can do
(native quantization, searching a quantized field without rescoring, asymmetric binary, keyword
search, the kinds it holds) the suite reads from the store's own `capabilities`, so a store that
declares a capability is held to it. `drive_async`: every search
goes through the store's async API (`asearch`, awaited on an event loop of the test's own), so
the search cases also run the async path: natively async on the Qdrant server (HTTP with
shards, and gRPC) and the Weaviate server, a worker thread on the memory store.
"""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from qdrant_server import session_server as qdrant_session_server
from qdrant_server import unavailable_reason as qdrant_unavailable_reason
from weaviate_server import embedded_client, session_server, unavailable_reason

from ragembed import Document, MemoryStore, Schema, VectorStore
from ragembed.types import Embeddings, PassageMap

Factory = Callable[[Path], VectorStore]


@dataclass(frozen=True)
class Backend:
    create: Factory
    reopen: Factory | None = None
    drive_async: bool = False
    on_shared_server: bool = False  # the session's server: the collection is dropped after the test
    skip_reason: str | None = None


class AsyncDriven:
    """The store under test with `search` running its `asearch` to completion on one event loop
    (the loop an async application would hold); everything else is the store's own."""

    def __init__(self, store: VectorStore) -> None:
        self.store, self.loop = store, asyncio.new_event_loop()

    def search(self, plan, filter=None):
        return self.loop.run_until_complete(self.store.asearch(plan, filter))

    def search_many(self, plans, filter=None):
        return self.loop.run_until_complete(self.store.asearch_many(plans, filter))

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.store.aclose())
        finally:
            self.loop.close()

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def __repr__(self) -> str:
        return f"{self.store!r} (searched through asearch)"


def qdrant_local(path: str | Path) -> VectorStore:
    from ragembed.stores.qdrant import QdrantStore

    return QdrantStore("contract", path=str(path))


def qdrant_edge(tmp_path: Path, write_ahead_log: bool | None = None) -> VectorStore:
    from ragembed.stores.qdrant import QdrantEdgeStore

    return QdrantEdgeStore(tmp_path / "edge", "contract", write_ahead_log=write_ahead_log)


def qdrant_server(
    tmp_path: Path,
    fresh: bool = True,
    grpc: bool = False,
    shards: int | None = None,
    indexing_threshold_kb: int | None = None,
) -> VectorStore:
    from ragembed.stores.qdrant import QdrantStore

    url, grpc_port = qdrant_session_server()
    name = f"contract_{'grpc_' if grpc else ''}{f'{shards}shards_' if shards else ''}{tmp_path.name[-40:]}"
    store = QdrantStore(
        name,
        url=url,
        api_key=os.environ.get("QDRANT_API_KEY"),
        prefer_grpc=grpc,
        grpc_port=grpc_port,
        shard_number=shards,
        indexing_threshold_kb=indexing_threshold_kb,
    )
    if fresh:
        store.drop()
    return store


def weaviate_collection(tmp_path: Path) -> str:
    return "Contract_" + "".join(c for c in tmp_path.name if c.isalnum())[-40:]


def weaviate_server(tmp_path: Path, fresh: bool = True) -> VectorStore:
    from ragembed.stores.weaviate import WeaviateStore

    url, grpc_port = session_server()
    store = WeaviateStore(url, weaviate_collection(tmp_path), grpc_port=grpc_port, index="flat")
    if fresh:
        store.drop()
    return store


def weaviate_embedded(tmp_path: Path, fresh: bool = True) -> VectorStore:
    from ragembed.stores.weaviate import WeaviateStore

    store = WeaviateStore(collection=weaviate_collection(tmp_path), client=embedded_client(), index="flat")
    if fresh:
        store.drop()
    return store


WEAVIATE_SKIP = unavailable_reason()
QDRANT_SKIP = qdrant_unavailable_reason()

BACKENDS: dict[str, Backend] = {
    "memory": Backend(lambda tmp: MemoryStore()),
    "memory-persisted": Backend(
        lambda tmp: MemoryStore(tmp / "collection"), lambda tmp: MemoryStore(tmp / "collection")
    ),
    "qdrant-local-memory": Backend(lambda tmp: qdrant_local(":memory:")),
    "qdrant-local-path": Backend(lambda tmp: qdrant_local(tmp / "local"), lambda tmp: qdrant_local(tmp / "local")),
    "qdrant-edge": Backend(qdrant_edge, qdrant_edge),
    # without the engine's write-ahead log every write is flushed; reopened with no preference
    "qdrant-edge-no-wal": Backend(lambda tmp: qdrant_edge(tmp, write_ahead_log=False), qdrant_edge),
    # The server over HTTP and over gRPC (prefer_grpc=True); reopening = a new client.
    "qdrant-server": Backend(
        qdrant_server, lambda tmp: qdrant_server(tmp, fresh=False), on_shared_server=True, skip_reason=QDRANT_SKIP
    ),
    "qdrant-server-grpc": Backend(
        lambda tmp: qdrant_server(tmp, grpc=True),
        lambda tmp: qdrant_server(tmp, fresh=False, grpc=True),
        on_shared_server=True,
        skip_reason=QDRANT_SKIP,
    ),
    # Three shards on one server: every result must equal an unsharded collection's (BM25's IDF
    # over the whole collection, not per shard).
    "qdrant-server-sharded": Backend(
        lambda tmp: qdrant_server(tmp, shards=3),
        lambda tmp: qdrant_server(tmp, fresh=False, shards=3),
        on_shared_server=True,
        skip_reason=QDRANT_SKIP,
    ),
    "qdrant-server-async": Backend(
        lambda tmp: qdrant_server(tmp, shards=3),
        lambda tmp: qdrant_server(tmp, fresh=False, shards=3),
        drive_async=True,
        on_shared_server=True,
        skip_reason=QDRANT_SKIP,
    ),
    "qdrant-server-grpc-async": Backend(
        lambda tmp: qdrant_server(tmp, grpc=True),
        lambda tmp: qdrant_server(tmp, fresh=False, grpc=True),
        drive_async=True,
        on_shared_server=True,
        skip_reason=QDRANT_SKIP,
    ),
    "memory-async": Backend(lambda tmp: MemoryStore(), drive_async=True),
    # Weaviate: flat (exact) indexes so rankings can be compared; reopening = a new connection
    # (server restarts are tested in tests/test_weaviate.py).
    "weaviate-server": Backend(
        weaviate_server, lambda tmp: weaviate_server(tmp, fresh=False), on_shared_server=True, skip_reason=WEAVIATE_SKIP
    ),
    "weaviate-server-async": Backend(
        weaviate_server,
        lambda tmp: weaviate_server(tmp, fresh=False),
        drive_async=True,
        on_shared_server=True,
        skip_reason=WEAVIATE_SKIP,
    ),
    "weaviate-embedded": Backend(
        weaviate_embedded,
        lambda tmp: weaviate_embedded(tmp, fresh=False),
        on_shared_server=True,
        skip_reason=WEAVIATE_SKIP,
    ),
}


def backend_params() -> list:
    return [
        pytest.param(name, marks=pytest.mark.skip(reason=b.skip_reason)) if b.skip_reason else name
        for name, b in sorted(BACKENDS.items())
    ]


def written_store(
    backend_name: str,
    tmp_path: Path,
    schema_of: Callable[[VectorStore], Schema],
    documents: list[Document],
    vectors_of: Callable[[VectorStore], dict[str, Embeddings]],
    passage_maps: list[PassageMap] | None = None,
) -> Iterator[VectorStore]:
    """A fixture's body: the backend's store holding `documents` under the schema `schema_of`
    gives for it (the kinds it stores), with the vectors `vectors_of` gives for it; optimized,
    reopened where it persists, driven through its async API where the backend says so; dropped
    (on a shared server) and closed afterwards."""
    backend = BACKENDS[backend_name]
    store = backend.create(tmp_path)
    schema = schema_of(store)
    with warnings.catch_warnings():  # local mode's "no native quantization" warning: tested apart
        warnings.simplefilter("ignore")
        store.ensure_schema(schema)
    store.upsert(documents, vectors_of(store), passage_maps)
    store.optimize()
    if backend.reopen is not None:
        store.close()
        store = backend.reopen(tmp_path)
    if backend.drive_async:
        store = AsyncDriven(store)
    yield store
    if backend.on_shared_server:
        store.drop()
    store.close()
