"""The async twins (asearch, asearch_many, aindex, async with) on the Qdrant server, where the
store's search awaits AsyncQdrantClient, and on the memory store, where it runs in a thread.

Which path ran is read from the event loop's default executor (a real ThreadPoolExecutor that
counts what it is given): Retriever.asearch always embeds the query there, and a thread-based
store search is a second job, a native one is not.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from ragembed import MemoryStore, Retriever
from ragembed.errors import StoreError

from qdrant_server import session_server
from qdrant_server import unavailable_reason as qdrant_unavailable_reason

QUERIES = ["vitamin D and bone health", "tumour growth in mice", "insulin resistance in obesity",
           "antibiotic resistance of bacteria", "DNA repair mechanisms", "gene expression in yeast"]
STRATEGIES = ["dense", "int8", "bm25", "hybrid"]
QDRANT_SKIP = qdrant_unavailable_reason()


class CountingExecutor(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.jobs = 0

    def submit(self, fn, /, *args, **kwargs):
        self.jobs += 1
        return super().submit(fn, *args, **kwargs)


def run_counting(make_coroutine):
    """Run a coroutine on a fresh loop; returns (its result, jobs given to the default executor)."""
    loop, executor = asyncio.new_event_loop(), CountingExecutor()
    loop.set_default_executor(executor)
    try:
        return loop.run_until_complete(make_coroutine()), executor.jobs
    finally:
        loop.close()
        executor.shutdown()


def qdrant_server_store(shards: int | None = None, grpc: bool = False):
    from ragembed.stores.qdrant import QdrantStore

    url, grpc_port = session_server()
    return QdrantStore(f"async_{uuid.uuid4().hex[:10]}", url=url, api_key=os.environ.get("QDRANT_API_KEY"),
                       shard_number=shards, prefer_grpc=grpc, grpc_port=grpc_port)


@pytest.fixture(scope="module", params=[
    "memory",
    pytest.param("qdrant-server-3-shards", marks=[pytest.mark.server, pytest.mark.skipif(
        QDRANT_SKIP is not None, reason=QDRANT_SKIP or "")]),
    pytest.param("qdrant-server-grpc", marks=[pytest.mark.server, pytest.mark.skipif(
        QDRANT_SKIP is not None, reason=QDRANT_SKIP or "")]),
])
def retriever(request, scifact_docs, dense_embedder, bm25_embedder):
    store = {"memory": MemoryStore, "qdrant-server-3-shards": lambda: qdrant_server_store(shards=3),
             "qdrant-server-grpc": lambda: qdrant_server_store(grpc=True)}[request.param]()
    r = Retriever(store, STRATEGIES, embedder=dense_embedder, sparse_embedder=bm25_embedder)
    r.index(scifact_docs)
    yield r
    r.drop()
    r.close()


def ids(rankings):
    return [[h.id for h in hits] for hits in rankings]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_asearch_answers_like_search_on_the_path_the_store_declares(retriever, strategy):
    expected = ids(retriever.search_many(QUERIES, k=10, strategy=strategy))

    async def each():
        return await asyncio.gather(*(retriever.asearch(q, k=10, strategy=strategy) for q in QUERIES))

    answers, jobs = run_counting(each)
    assert ids(answers) == expected
    per_query = 1 if retriever.store.native_async else 2  # the embedding (+ a thread-based store search)
    assert jobs == per_query * len(QUERIES)
    assert retriever.store.native_async == (not isinstance(retriever.store, MemoryStore))


def test_asearch_many_embeds_once_and_answers_like_search_many(retriever):
    expected = ids(retriever.search_many(QUERIES, k=5, strategy="hybrid"))
    answers, jobs = run_counting(lambda: retriever.asearch_many(QUERIES, k=5, strategy="hybrid"))
    assert ids(answers) == expected
    assert jobs == 1 + (0 if retriever.store.native_async else len(QUERIES))


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
def test_an_async_search_failure_is_a_clear_store_error(scifact_docs, dense_embedder):
    r = Retriever(qdrant_server_store(), "dense", embedder=dense_embedder)
    r.index(scifact_docs[:10])
    name = r.store.collection
    other = qdrant_server_store()
    other.client.delete_collection(name)  # another client drops the collection under r
    other.close()
    with pytest.raises(StoreError, match=f"could not search \\(collection '{name}'\\): HTTP 404"):
        asyncio.run(r.asearch("cells"))
    r.close()
