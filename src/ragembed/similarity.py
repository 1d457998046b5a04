"""Similarity between two sets of embeddings, as sentence-transformers' `model.similarity`, and
the one row normaliser the embedders and stores use."""

from __future__ import annotations

import numpy as np

from ragembed.errors import DimensionMismatchError, InvalidInputError
from ragembed.types import DenseEmbeddings, Precision


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row scaled to unit L2 norm; an all-zero row stays zero."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


def similarity(a: DenseEmbeddings, b: DenseEmbeddings | None = None) -> np.ndarray:
    """Cosine similarity matrix (len(a), len(b)) of float32 dense embeddings (b defaults to a)."""
    b = a if b is None else b
    for e in (a, b):
        if not isinstance(e, DenseEmbeddings) or e.precision is not Precision.FLOAT32:
            raise InvalidInputError("similarity takes float32 DenseEmbeddings (from embed_documents/queries)")
    if a.dim != b.dim:
        raise DimensionMismatchError(f"cannot compare {a.dim}- and {b.dim}-dimensional embeddings")
    similarities: np.ndarray = normalize_rows(a.data) @ normalize_rows(b.data).T
    return similarities
