"""A collection's manifest (Schema: fields + each encoder's record) and embedders restored from it
without changing the embedder a caller shares (BM25: no model needed)."""

from __future__ import annotations

import pytest

from ragembed import BM25Embedder, Document, EmbeddingKind, MemoryStore, Retriever
from ragembed.errors import InvalidInputError, SchemaMismatchError
from ragembed.search.schema import Schema, VectorField

DENSE = VectorField("dense", EmbeddingKind.DENSE, 384)
BINARY = VectorField("dense_binary", EmbeddingKind.DENSE, 384, precision="binary")
SPARSE = VectorField("bm25", EmbeddingKind.SPARSE, 2**32, distance="dot", idf=True)
BM25_STATE = {"avgdl": 7.5, "k1": 1.5, "b": 0.75, "language": "english", "stopwords": "en"}

SHORT = [Document(f"s{i}", f"cells divide {'fast ' * i}") for i in range(1, 5)]
LONG = [Document(f"l{i}", "proteins fold into shapes " * (5 + i)) for i in range(4)]


def test_the_manifest_round_trips_with_its_encoders():
    schema = Schema((DENSE, SPARSE), {"sparse": BM25_STATE, EmbeddingKind.DENSE: {"model": "m"}})
    saved = schema.to_dict()
    assert saved["encoders"] == {"sparse": BM25_STATE, "dense": {"model": "m"}}
    assert all("encoder_state" not in f for f in saved["fields"])
    again = Schema.from_dict(saved)
    assert again == schema and again.encoders[EmbeddingKind.SPARSE] == BM25_STATE


def test_a_schema_saved_before_the_manifest_reads_its_fields_encoder_state():
    legacy = {
        "fields": [
            {**DENSE.to_dict(), "encoder_state": {"model": "m"}},
            {**SPARSE.to_dict(), "encoder_state": BM25_STATE},
            {**BINARY.to_dict(), "encoder_state": None},
        ]
    }
    schema = Schema.from_dict(legacy)
    assert schema.names == ["dense", "bm25", "dense_binary"]
    assert schema.encoders == {EmbeddingKind.DENSE: {"model": "m"}, EmbeddingKind.SPARSE: BM25_STATE}


def test_merging_keeps_the_recorded_encoder_and_adds_new_ones():
    current = Schema((DENSE,), {"dense": {"model": "first"}})
    merged = current.merged_with(Schema((DENSE, SPARSE), {"dense": {"model": "other"}, "sparse": BM25_STATE}))
    assert merged.names == ["dense", "bm25"]
    assert merged.encoders == {EmbeddingKind.DENSE: {"model": "first"}, EmbeddingKind.SPARSE: BM25_STATE}
    with pytest.raises(SchemaMismatchError, match="'dense' exists"):
        current.merged_with(Schema((VectorField("dense", EmbeddingKind.DENSE, 64),)))


# Records are by embedder name since embedders have names ("colour" is a name now, "col our" is not).
@pytest.mark.parametrize("encoders", [{"col our": {}}, {"dense": "model-name"}, ["dense"]])
def test_a_malformed_encoder_record_is_refused(encoders):
    with pytest.raises(InvalidInputError, match="embedder name|embedder name to a mapping"):
        Schema((DENSE,), encoders)


def test_a_shared_embedder_is_never_changed_and_each_collection_keeps_its_statistics():
    shared = BM25Embedder()
    short, long = (Retriever(MemoryStore(), "bm25", sparse_embedder=shared) for _ in range(2))
    short.index(SHORT)
    long.index(LONG)
    assert shared.avgdl is None  # fitted copies went to the collections, not into the caller's object
    short_avgdl = short.store.schema.encoders[EmbeddingKind.SPARSE]["avgdl"]
    long_avgdl = long.store.schema.encoders[EmbeddingKind.SPARSE]["avgdl"]
    assert short_avgdl < long_avgdl
    assert short.embedder(EmbeddingKind.SPARSE).avgdl == short_avgdl
    assert long.embedder(EmbeddingKind.SPARSE).avgdl == long_avgdl

    # A document added to `short` after `long` was indexed scores with short's statistics: the same
    # score as in a collection that never saw the long documents.
    late = Document("late", "cells divide fast fast")
    alone = Retriever(MemoryStore(), "bm25", sparse_embedder=BM25Embedder())
    alone.index(SHORT)
    for retriever in (short, alone):
        retriever.index([late])
    (ours,) = [h for h in short.search("divide", k=10) if h.id == "late"]
    (reference,) = [h for h in alone.search("divide", k=10) if h.id == "late"]
    assert ours.score == pytest.approx(reference.score, rel=1e-6)
    assert short.store.schema.encoders[EmbeddingKind.SPARSE]["avgdl"] == short_avgdl


def test_a_bm25_embedder_with_another_tokeniser_is_refused_and_nothing_is_lost():
    store = MemoryStore()
    Retriever(store, "bm25").index(SHORT)
    with pytest.raises(InvalidInputError, match="language='english'.*same settings"):
        Retriever(store, "bm25", sparse_embedder=BM25Embedder(language="german"))
    assert store.count() == len(SHORT)
    assert Retriever(store, "bm25").search("divide", k=1)[0].id.startswith("s")
