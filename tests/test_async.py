"""The async twins (asearch, asearch_many, aindex, async with) on the Qdrant and Weaviate servers,
where the store's search awaits the engine's async client, and on the memory store, where it
runs in a thread.

Which path ran is read from the event loop's default executor (a real ThreadPoolExecutor that
notes the name of each function asyncio.to_thread gives it): Retriever.asearch embeds the query
there (`_prepare`); a thread-based store runs its `_search` there too, a natively async one never.
"""

from __future__ import annotations

import asyncio
import functools
import os
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from qdrant_server import session_server
from qdrant_server import unavailable_reason as qdrant_unavailable_reason
from weaviate_server import session_server as weaviate_session_server
from weaviate_server import unavailable_reason as weaviate_unavailable_reason

from ragembed import MemoryStore, Retriever
from ragembed.errors import StoreError

QUERIES = [
    "vitamin D and bone health",
    "tumour growth in mice",
    "insulin resistance in obesity",
    "antibiotic resistance of bacteria",
    "DNA repair mechanisms",
    "gene expression in yeast",
]
STRATEGIES = ["dense", "int8", "bm25", "hybrid"]
WEAVIATE_STRATEGIES = ["dense", "int8", "keyword", "keyword-hybrid"]  # Weaviate has no sparse vectors
QDRANT_SKIP = qdrant_unavailable_reason()
WEAVIATE_SKIP = weaviate_unavailable_reason()


class NotingExecutor(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.jobs: list[str] = []

    def submit(self, fn, /, *args, **kwargs):
        # asyncio.to_thread(f, ...) submits functools.partial(context.run, f, ...)
        target = fn.args[0] if isinstance(fn, functools.partial) and fn.args else fn
        self.jobs.append(getattr(target, "__name__", repr(target)))
        return super().submit(fn, *args, **kwargs)


def run_noting(make_coroutine):
    """Run a coroutine on a fresh loop; returns (its result, {function name: jobs} given to the
    loop's default executor)."""
    loop, executor = asyncio.new_event_loop(), NotingExecutor()
    loop.set_default_executor(executor)
    try:
        return loop.run_until_complete(make_coroutine()), Counter(executor.jobs)
    finally:
        loop.close()
        executor.shutdown()


def qdrant_server_store(shards: int | None = None, grpc: bool = False):
    from ragembed.stores.qdrant import QdrantStore

    url, grpc_port = session_server()
    return QdrantStore(
        f"async_{uuid.uuid4().hex[:10]}",
        url=url,
        api_key=os.environ.get("QDRANT_API_KEY"),
        shard_number=shards,
        prefer_grpc=grpc,
        grpc_port=grpc_port,
    )


def weaviate_server_store():
    from ragembed.stores.weaviate import WeaviateStore

    url, grpc_port = weaviate_session_server()
    return WeaviateStore(url, f"Async_{uuid.uuid4().hex[:10]}", grpc_port=grpc_port, index="flat")


def on_server(skip: str | None) -> list:
    return [pytest.mark.server, pytest.mark.skipif(skip is not None, reason=skip or "")]


@pytest.fixture(
    scope="module",
    params=[
        "memory",
        pytest.param("qdrant-server-3-shards", marks=on_server(QDRANT_SKIP)),
        pytest.param("qdrant-server-grpc", marks=on_server(QDRANT_SKIP)),
        pytest.param("weaviate-server", marks=on_server(WEAVIATE_SKIP)),
    ],
)
def retriever(request, scifact_docs, dense_embedder, bm25_embedder):
    store = {
        "memory": MemoryStore,
        "qdrant-server-3-shards": lambda: qdrant_server_store(shards=3),
        "qdrant-server-grpc": lambda: qdrant_server_store(grpc=True),
        "weaviate-server": weaviate_server_store,
    }[request.param]()
    strategies = WEAVIATE_STRATEGIES if request.param.startswith("weaviate") else STRATEGIES
    r = Retriever(store, strategies, embedder=dense_embedder, sparse_embedder=bm25_embedder)
    r.index(scifact_docs)
    yield r
    r.drop()
    r.close()


def ids(rankings):
    return [[h.id for h in hits] for hits in rankings]


def test_asearch_answers_like_search_on_the_path_the_store_declares(retriever):
    for strategy in retriever.strategies:
        expected = ids(retriever.search_many(QUERIES, k=10, strategy=strategy))

        async def each():
            return await asyncio.gather(*(retriever.asearch(q, k=10, strategy=strategy) for q in QUERIES))

        answers, jobs = run_noting(each)
        assert ids(answers) == expected, strategy
        assert jobs["_prepare"] == len(QUERIES), strategy  # the embedding
        assert jobs["_search"] == (0 if retriever.store.capabilities.native_async else len(QUERIES)), strategy
    assert retriever.store.capabilities.native_async == (not isinstance(retriever.store, MemoryStore))


def test_asearch_many_embeds_once_and_answers_like_search_many(retriever):
    hybrid = list(retriever.strategies)[-1]
    expected = ids(retriever.search_many(QUERIES, k=5, strategy=hybrid))
    answers, jobs = run_noting(lambda: retriever.asearch_many(QUERIES, k=5, strategy=hybrid))
    assert ids(answers) == expected
    assert jobs["_prepare"] == 1
    assert jobs["_search"] == (0 if retriever.store.capabilities.native_async else len(QUERIES))


def test_aindex_and_async_with(scifact_docs, dense_embedder):
    store = MemoryStore()

    async def index_then_search():
        async with Retriever(store, "dense", embedder=dense_embedder) as r:
            assert await r.aindex(scifact_docs[:20]) == 20
            return await r.asearch(scifact_docs[3].metadata["title"], k=1)

    hits = asyncio.run(index_then_search())
    assert hits[0].id == scifact_docs[3].id


@pytest.mark.server
@pytest.mark.skipif(QDRANT_SKIP is not None, reason=QDRANT_SKIP or "")
def test_an_async_qdrant_search_failure_is_a_clear_store_error(scifact_docs, dense_embedder):
    r = Retriever(qdrant_server_store(), "dense", embedder=dense_embedder)
    r.index(scifact_docs[:10])
    name = r.store.collection
    other = qdrant_server_store()
    other.client.delete_collection(name)  # another client drops the collection under r
    other.close()
    with pytest.raises(StoreError, match=f"could not search \\(collection '{name}'\\): HTTP 404"):
        asyncio.run(r.asearch("cells"))
    r.close()


@pytest.mark.server
@pytest.mark.skipif(WEAVIATE_SKIP is not None, reason=WEAVIATE_SKIP or "")
def test_an_async_weaviate_search_failure_is_a_clear_store_error(scifact_docs, dense_embedder):
    r = Retriever(weaviate_server_store(), "dense", embedder=dense_embedder)
    r.index(scifact_docs[:10])
    from ragembed.stores.weaviate.connection import connect

    url, grpc_port = weaviate_session_server()
    with connect(url, grpc_port=grpc_port) as other:  # another client drops the collection under r
        other.collections.delete(r.store.name)
    with pytest.raises(StoreError, match=f"Weaviate \\(http.*, collection {r.store.name}\\): Weaviate"):
        asyncio.run(r.asearch("cells"))
    r.close()
