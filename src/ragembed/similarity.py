"""Similarity between two sets of embeddings, as sentence-transformers' `model.similarity`."""

from __future__ import annotations

import numpy as np

from ragembed.errors import DimensionMismatchError, InvalidInputError
from ragembed.types import DenseEmbeddings, Precision


def similarity(a: DenseEmbeddings, b: DenseEmbeddings | None = None) -> np.ndarray:
    """Cosine similarity matrix (len(a), len(b)) of float32 dense embeddings (b defaults to a)."""
    b = a if b is None else b
    for e in (a, b):
        if not isinstance(e, DenseEmbeddings) or e.precision is not Precision.FLOAT32:
            raise InvalidInputError("similarity takes float32 DenseEmbeddings (from embed_documents/queries)")
    if a.dim != b.dim:
        raise DimensionMismatchError(f"cannot compare {a.dim}- and {b.dim}-dimensional embeddings")

    def unit(m: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        return m / np.where(norms == 0, 1.0, norms)

    similarities: np.ndarray = unit(a.data) @ unit(b.data).T
    return similarities
