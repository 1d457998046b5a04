"""Matryoshka embeddings: the first `dim` coordinates of a dense vector, re-normalised.

A Matryoshka-trained model packs most of the meaning into the leading dimensions, so a
truncated vector is a cheap stand-in for the full one: search at 64 dimensions, then rescore
the candidates at full dimension (the funnel). Untrained models also truncate, just less well.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ragembed.embedders.base import Embedder, Role
from ragembed.embedders.dense import DenseEmbedder
from ragembed.embedders.windows import Truncation
from ragembed.errors import InvalidInputError
from ragembed.similarity import normalize_rows
from ragembed.types import DenseEmbeddings, EmbeddingKind, Precision, narrow, validate_texts


def truncate(embeddings: DenseEmbeddings, dim: int) -> DenseEmbeddings:
    """Keep the first `dim` coordinates of float32 vectors and L2-normalise them again."""
    if embeddings.precision is not Precision.FLOAT32:
        raise InvalidInputError("truncate float32 embeddings, then quantize; not the other way round")
    check_dim(dim, embeddings.dim)
    return DenseEmbeddings(normalize_rows(embeddings.data[:, :dim]))


def check_dim(dim: int, full_dim: int) -> None:
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or not 0 < dim <= full_dim:
        raise InvalidInputError(
            f"Matryoshka dimension {dim!r} is not in 1..{full_dim} (the model's dimension); "
            "pick a smaller dimension such as 64, 128 or 256"
        )


class MatryoshkaEmbedder(Embedder):
    """A dense embedder whose vectors are truncated to `dim` and re-normalised.

    Full-dimension vectors are cached by the base embedder, so several dimensions of the same
    texts cost one encoding.
    """

    kind = EmbeddingKind.DENSE

    def __init__(self, base: DenseEmbedder | None = None, *, dim: int) -> None:
        super().__init__(cache=False, show_progress=False)
        self.base = base or DenseEmbedder()
        check_dim(dim, self.base.dim)
        self._dim = int(dim)

    def __repr__(self) -> str:
        return f"MatryoshkaEmbedder(base={self.base!r}, dim={self._dim})"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def identity(self) -> str:
        return f"{self.base.identity}|matryoshka={self._dim}"

    def encoder_state(self) -> dict[str, Any]:
        return self.base.encoder_state()

    def restored(self, state: Mapping[str, Any]) -> MatryoshkaEmbedder:
        base = self.base.restored(state)
        return self if base is self.base else MatryoshkaEmbedder(base, dim=self._dim)

    def truncation(self, texts: Sequence[str]) -> Truncation | None:
        return self.base.truncation(texts)

    def _encode(self, texts: list[str], role: Role) -> DenseEmbeddings:
        return truncate(narrow(self.base.embed(texts, role), DenseEmbeddings), self._dim)

    def embed_documents_at(self, texts: Sequence[str], dims: Iterable[int]) -> dict[int, DenseEmbeddings]:
        """Document vectors at several dimensions from one encoding (for funnel search)."""
        full = self.base.embed_documents(validate_texts(texts))
        return {int(d): truncate(narrow(full, DenseEmbeddings), d) for d in dims}
