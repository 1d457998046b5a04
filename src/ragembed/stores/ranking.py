"""Result order shared by the engine adapters: score descending, ties by document id, the order
the memory store defines, so every backend returns the same ranking for the same scores."""

from __future__ import annotations

from collections.abc import Callable

from ragembed.types import Hit


def ordered_hits(hits: list[Hit], limit: int) -> list[Hit]:
    """Score descending, ties by document id: the order the memory store defines."""
    return sorted(hits, key=lambda h: (-h.score, h.id))[:limit]


def fetch_with_ties(run: Callable[[int], list[Hit]], limit: int) -> list[Hit]:
    """Run a query for `limit` hits, asking for more while the cut-off score is tied, so that
    ties are decided by document id and not by the engine's internal order."""
    asked = limit + 8
    while True:
        hits = run(asked)
        if len(hits) < asked or len(hits) <= limit or hits[-1].score < hits[limit - 1].score:
            return ordered_hits(hits, limit)
        asked *= 4
