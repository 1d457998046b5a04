"""The rerank stage on every store: the same candidates reranked to the same hits, with the same
scores and passages, as the exact memory store gives, by a real cross-encoder (`>rerank`) and by
ColBERT MaxSim over the tokens the store keeps (`>colbert`), through each store's sync or async
API and after a reopen. The stores run only the first stage; the scoring is shared
(VectorStore.search_many), so what this holds to is that every store hands it the same candidates,
texts, passage maps and stored tokens."""

from __future__ import annotations

import asyncio
import warnings

import pytest

from ragembed import Document, MemoryStore, Retriever

from .backends import BACKENDS, backend_params
from .test_long_documents import HANDBOOK, NOTES, QUERY


def strategies_for(store) -> list[str]:
    kinds = {k.value for k in store.capabilities.kinds}
    names = ["dense", "dense>rerank:5"]
    if "sparse" in kinds:
        names.append("hybrid>rerank:5")
    if "multivector" in kinds:
        names += ["colbert", "dense>colbert:5"]
    return names


def reranked_hits(store, strategies, embedders, async_api: bool, reopen=None):
    with warnings.catch_warnings():  # local mode's "no native quantization" warning
        warnings.simplefilter("ignore")
        Retriever(store, strategies, passages=True, **embedders).index([Document("handbook.md", HANDBOOK), *NOTES])
    if reopen is not None:
        store.close()
        store = reopen()
    retriever = Retriever(store, strategies, **embedders)
    out = {}
    for name in (s for s in strategies if ">" in s):
        hits = (
            asyncio.run(retriever.asearch(QUERY, 3, strategy=name))
            if async_api
            else retriever.search(QUERY, 3, strategy=name)
        )
        out[name] = [(h.id, round(h.score, 4), h.passage.text if h.passage else None) for h in hits]
    return store, out


@pytest.fixture(scope="module")
def embedders(dense_embedder, bm25_embedder, colbert_embedder, cross_encoder):
    return {
        "embedder": dense_embedder,
        "sparse_embedder": bm25_embedder,
        "multivector_embedder": colbert_embedder,
        "reranker": cross_encoder,
    }


@pytest.fixture(scope="module")
def memory_hits(embedders):
    """The exact store's reranked hits for every strategy any store serves here."""
    everything = ["dense", "colbert", "dense>rerank:5", "hybrid>rerank:5", "dense>colbert:5"]
    return reranked_hits(MemoryStore(), everything, embedders, async_api=False)[1]


@pytest.mark.parametrize("backend_name", backend_params())
def test_every_store_reranks_to_the_memory_stores_hits(backend_name, tmp_path, embedders, memory_hits):
    backend = BACKENDS[backend_name]
    store = backend.create(tmp_path)
    strategies = strategies_for(store)
    try:
        reopen = (lambda: backend.reopen(tmp_path)) if backend.reopen is not None else None
        store, got = reranked_hits(store, strategies, embedders, backend.drive_async, reopen)
        assert got == {name: memory_hits[name] for name in got}
        assert all(len(hits) == 3 and hits[0][2] for hits in got.values())  # each hit names its passage
    finally:
        if backend.on_shared_server:
            store.drop()
        store.close()
