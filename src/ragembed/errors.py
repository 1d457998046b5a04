"""Exception classes a user can catch.

Every error ragembed raises on purpose is a `RagembedError`; the subclasses say which kind of
mistake it was. Messages say what was wrong and how to fix it.
"""

from __future__ import annotations

from collections.abc import Iterable


class RagembedError(Exception):
    """Base class of every error ragembed raises on purpose."""


class InvalidInputError(RagembedError, ValueError):
    """Texts, documents, ids, vectors or arguments that cannot be used as given."""


class DimensionMismatchError(InvalidInputError):
    """A vector whose dimension differs from the collection's field."""


class EncoderMismatchError(InvalidInputError):
    """An embedder that cannot stand in for the one a collection was encoded with (another model,
    backend, precision, ColBERT pool factor or BM25 tokeniser): its vectors would mean other
    things. The message names the embedder to use."""


class UnsupportedStrategyError(RagembedError):
    """A search strategy that the embedder or the store cannot serve."""


class ModelLoadError(RagembedError):
    """A model that cannot be found or loaded."""


class StoreError(RagembedError):
    """A store that cannot be opened, read or written."""


class PartialWriteError(StoreError):
    """An upsert the engine accepted only in part: `failed` maps each refused document id to the
    engine's reason. The other documents are written; upserting the failed ones again is safe."""

    def __init__(self, message: str, failed: dict[str, str]) -> None:
        super().__init__(message)
        self.failed = failed

    @staticmethod
    def not_confirmed(ids: Iterable[str], cause: Exception) -> dict[str, str]:
        """`failed` entries for documents whose write the store could not confirm."""
        return dict.fromkeys(ids, f"not confirmed: {cause}"[:300])


class SchemaMismatchError(StoreError):
    """An existing collection whose vector fields differ from what was asked for."""


class MissingDependencyError(RagembedError, ImportError):
    """An optional dependency (an extra) that is not installed."""

    @classmethod
    def for_extra(cls, package: str, extra: str) -> MissingDependencyError:
        return cls(
            f"{package} is not installed; it comes with the ragembed[{extra}] extra: pip install 'ragembed[{extra}]'"
        )


class TruncationWarning(UserWarning):
    """Texts longer than a model's window: it embedded only their first word pieces. Issued once
    per indexing call and embedder, naming how many and by how much (`Truncation`)."""
