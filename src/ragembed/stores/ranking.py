"""Result order shared by the engine adapters: score descending, ties by document id, the order
the memory store defines, so every backend returns the same ranking for the same scores; and
reciprocal rank fusion for adapters that fuse stages themselves."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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


def reciprocal_rank_fusion(rankings: Sequence[list[Hit]], limit: int, k: int,
                           weights: Sequence[float] | None = None) -> list[Hit]:
    """score = sum over rankings of weight / (k + rank), rank from 1 (the memory store's RRF);
    each fused hit keeps the text and metadata of its first appearance."""
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for ranking, weight in zip(rankings, weights or (1.0,) * len(rankings)):
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.id] = scores.get(hit.id, 0.0) + weight / (k + rank)
            first.setdefault(hit.id, hit)
    return ordered_hits([Hit(i, s, first[i].text, first[i].metadata) for i, s in scores.items()], limit)
