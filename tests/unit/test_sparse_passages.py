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
