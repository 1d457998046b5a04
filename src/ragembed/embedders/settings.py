"""The settings that change an embedder's vectors, listed once per embedder (`Embedder.settings()`).

The list is the embeddings cache's key and the record a collection keeps of how its documents were
encoded; `recorded_statistics` checks an embedder against such a record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ragembed.errors import EncoderMismatchError

UNRECORDED: Any = object()  # a setting that records made before it existed do not know


@dataclass(frozen=True)
class Setting:
    """One setting that changes an embedder's vectors, named as its constructor argument.

    legacy: what a collection record made before the setting was recorded means (UNRECORDED:
        unknown, so it is not checked). cached: applied before the embeddings cache, so it is part
        of the cache key (ColBERT's pooling runs on cached tokens: False). fitted: learned from a
        collection's corpus (BM25's average length): carried over from the record, not checked.
    cli: the `ragembed` option that sets it, for error messages."""

    name: str
    value: Any
    legacy: Any = UNRECORDED
    cached: bool = True
    fitted: bool = False
    cli: str | None = None


def recorded_statistics(state: Mapping[str, Any], settings: Sequence[Setting], embedder: str) -> dict[str, Any]:
    """The fitted settings a collection recorded differently from `settings` (to carry over), after
    refusing any other setting it recorded differently, naming every one and the embedder to use."""
    fitted: dict[str, Any] = {}
    differ: list[tuple[Setting, Any]] = []
    for setting in settings:
        recorded = state.get(setting.name, setting.legacy)
        if recorded is UNRECORDED or recorded == setting.value:
            continue
        if setting.fitted:
            fitted[setting.name] = recorded
        else:
            differ.append((setting, recorded))
    if differ:
        was = ", ".join(f"{s.name}={r!r}" for s, r in differ)
        now = ", ".join(f"{s.name}={s.value!r}" for s, _ in differ)
        flags = " ".join(f"{s.cli} {r}" for s, r in differ if s.cli and r is not None)
        raise EncoderMismatchError(
            f"this collection was indexed with {was}, and this {embedder} has {now}: documents and queries "
            f"encoded now would not match its vectors; create the embedder with the same settings, {embedder}({was})"
            + (f" (CLI: {flags})" if flags else "")
            + ", or index into a new collection"
        )
    return fitted
