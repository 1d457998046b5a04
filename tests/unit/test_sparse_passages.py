"""BM25 vectors of passages: one set per document, regrouped from per-passage embeddings, held by
a sparse per-passage field only (without a model)."""

from __future__ import annotations

import numpy as np
import pytest

from ragembed.errors import InvalidInputError
from ragembed.passages import grouped
from ragembed.search.schema import VectorField
from ragembed.types import EmbeddingKind, SparseEmbeddings, SparsePassageEmbeddings


def sparse(*rows: list[int]) -> SparseEmbeddings:
    return SparseEmbeddings(tuple(np.array(r) for r in rows), tuple(np.ones(len(r)) for r in rows))


def test_passage_vectors_regroup_per_document_in_order():
    sets = grouped(sparse([1], [2, 3], [4], [5, 6]), [1, 3])
    assert isinstance(sets, SparsePassageEmbeddings) and len(sets) == 2
    assert [i.tolist() for i in sets.passages[1].indices] == [[2, 3], [4], [5, 6]]
    assert [i.tolist() for i in sets.take([1, 0]).passages[1].indices] == [[1]]


def test_a_document_without_passages_is_refused():
    with pytest.raises(InvalidInputError, match="document 1's passage vectors must be non-empty"):
        SparsePassageEmbeddings((sparse([1]), sparse()))


@pytest.mark.parametrize("idf", [True, False])
def test_only_bm25_with_idf_or_unit_dense_vectors_are_per_passage(idf):
    if idf:
        field = VectorField("bm25_passages", EmbeddingKind.SPARSE, 0, distance="dot", idf=True, per_passage=True)
        assert field.embedder == "sparse" and field.per_passage
    else:
        with pytest.raises(InvalidInputError, match="or a sparse field with idf"):
            VectorField("bm25_passages", EmbeddingKind.SPARSE, 0, per_passage=True)


def passage_store():
    from ragembed import Document, MemoryStore, MultiVectorEmbeddings, Schema
    from ragembed.passages import Chunking
    from ragembed.types import PassageMap

    fields = (
        VectorField("dense", EmbeddingKind.MULTIVECTOR, 2, distance="dot", per_passage=True),
        VectorField("bm25_passages", EmbeddingKind.SPARSE, 0, distance="dot", idf=True, per_passage=True),
    )
    store = MemoryStore()
    store.ensure_schema(Schema(fields, {}, Chunking(16).record()))
    passages = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    maps = [PassageMap.of(np.array([[0, 5], [5, 10]]), passages)]
    return store, [Document("d", "0123456789")], {"dense": MultiVectorEmbeddings((passages,))}, maps


@pytest.mark.parametrize(
    ("given", "match"),
    [
        (sparse([1, 2]), "holds SparsePassageEmbeddings .* got SparseEmbeddings"),
        (SparsePassageEmbeddings((sparse([1]),)), "2 passages in its passage map but 1 sparse vectors"),
    ],
)
def test_bm25_of_passages_must_be_one_sparse_vector_a_passage(given, match):
    store, docs, vectors, maps = passage_store()
    with pytest.raises(InvalidInputError, match=match):
        store.upsert(docs, {**vectors, "bm25_passages": given}, maps)
    assert store.count() == 0
    store.upsert(docs, {**vectors, "bm25_passages": SparsePassageEmbeddings((sparse([1], [2]),))}, maps)
    assert store.count() == 1


def test_an_embedder_with_passage_statistics_restores_a_record_without_them():
    pytest.importorskip("bm25s")
    from ragembed.embedders.sparse import BM25Embedder

    record = BM25Embedder(avgdl=10.0).encoder_state()  # a collection of `bm25` only: passage_avgdl None
    restored = BM25Embedder(passage_avgdl=5.0).restored(record)
    assert restored.avgdl == 10.0 and restored.passage_avgdl is None
