"""Property-based tests (hypothesis): random unicode, control characters, odd ids, NaN/inf and
wrongly sized vectors, odd filters. Each either works correctly or raises a ragembed error; no
crash, no corrupted collection."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragembed import DenseEmbeddings, Document, MemoryStore, Range, Schema, VectorField, VectorSearch
from ragembed.errors import RagembedError
from ragembed.stores.qdrant_edge import QdrantEdgeStore
from ragembed.types import EmbeddingKind

DIM = 8
SCHEMA = Schema((VectorField("dense", EmbeddingKind.DENSE, DIM),))
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

ids = st.text(min_size=1, max_size=200).filter(lambda s: s.strip() and "\x00" not in s)
texts = st.text(min_size=1, max_size=2000).filter(lambda s: s.strip())
metadata = st.dictionaries(st.text(alphabet="abcdefghij_", min_size=1, max_size=8),
                           st.one_of(st.text(max_size=20), st.integers(-10**6, 10**6), st.booleans(),
                                     st.floats(allow_nan=False, allow_infinity=False, width=32)),
                           max_size=4)
documents = st.lists(st.builds(Document, ids, texts, metadata), min_size=1, max_size=20,
                     unique_by=lambda d: d.id)


def vectors(n: int, seed: int) -> dict:
    data = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return {"dense": DenseEmbeddings(data)}


@pytest.fixture(params=["memory", "qdrant-edge"])
def make_store(request, tmp_path):
    counter = iter(range(10**6))

    def make():
        if request.param == "memory":
            return MemoryStore(tmp_path / f"m{next(counter)}")
        return QdrantEdgeStore(tmp_path / "edge", f"c{next(counter)}")

    return make


@SETTINGS
@given(docs=documents, seed=st.integers(0, 1000))
def test_any_documents_round_trip(make_store, docs, seed):
    store = make_store()
    store.ensure_schema(SCHEMA)
    store.upsert(docs, vectors(len(docs), seed))
    store.upsert(docs, vectors(len(docs), seed))  # idempotent
    assert store.count() == len(docs)
    assert store.get([d.id for d in docs]) == docs
    hits = store.search(VectorSearch("dense", DenseEmbeddings(vectors(1, seed + 1)["dense"].data), len(docs)))
    assert sorted(h.id for h in hits) == sorted(d.id for d in docs)
    store.close()


@SETTINGS
@given(bad=st.sampled_from([np.nan, np.inf, -np.inf]), row=st.integers(0, 3), width=st.integers(1, 16))
def test_nan_inf_and_wrong_widths_are_refused_and_nothing_is_lost(make_store, bad, row, width):
    store = make_store()
    store.ensure_schema(SCHEMA)
    kept = [Document("kept", "kept text")]
    store.upsert(kept, vectors(1, 0))
    data = np.random.default_rng(row).normal(size=(4, DIM)).astype(np.float32)
    data[row, row % DIM] = bad
    docs = [Document(f"d{i}", f"text {i}") for i in range(4)]
    with pytest.raises(RagembedError):
        store.upsert(docs, {"dense": DenseEmbeddings(data)})
    if width != DIM:
        with pytest.raises(RagembedError):
            store.upsert(docs, {"dense": DenseEmbeddings(np.ones((4, width), np.float32))})
    assert store.count() == 1 and store.get(["kept"]) == kept
    store.close()


filters = st.dictionaries(
    st.text(min_size=0, max_size=6),
    st.one_of(st.text(max_size=5), st.integers(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
              st.lists(st.one_of(st.text(max_size=3), st.integers()), max_size=3),
              st.builds(Range, gte=st.integers(-5, 5), lt=st.one_of(st.none(), st.integers(-5, 5))),
              st.none(), st.dictionaries(st.text(max_size=2), st.integers(), max_size=1)),
    max_size=3)


@SETTINGS
@given(flt=filters)
def test_any_filter_is_a_result_or_a_ragembed_error(make_store, flt):
    store = make_store()
    store.ensure_schema(SCHEMA)
    docs = [Document(f"d{i}", f"text {i}", {"a": i, "b": "x" if i % 2 else "y", "c": [f"t{i}", "all"]}) for i in range(6)]
    store.upsert(docs, vectors(6, 1))
    try:
        hits = store.search(VectorSearch("dense", vectors(1, 2)["dense"], 6), filter=flt)
    except RagembedError:
        return
    assert {h.id for h in hits} <= {d.id for d in docs}
    store.close()
