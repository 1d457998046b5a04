"""Result order shared by the engine adapters: score descending, ties by document id, the order
the memory store defines, so every backend returns the same ranking for the same scores; and
reciprocal rank fusion for adapters that fuse stages themselves. (How an adapter asks for more
hits while the cut-off is tied is in stores/steps.py.)"""

from __future__ import annotations

from collections.abc import Sequence

from ragembed.types import Hit


def ordered_hits(hits: list[Hit], limit: int) -> list[Hit]:
    """Score descending, ties by document id: the order the memory store defines."""
    return sorted(hits, key=lambda h: (-h.score, h.id))[:limit]


def reciprocal_rank_fusion(
    rankings: Sequence[list[Hit]], limit: int, k: int, weights: Sequence[float] | None = None
) -> list[Hit]:
    """score = sum over rankings of weight / (k + rank), rank from 1 (the memory store's RRF);
    each fused hit keeps the text and metadata of its first appearance."""
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for ranking, weight in zip(rankings, weights or (1.0,) * len(rankings)):
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.id] = scores.get(hit.id, 0.0) + weight / (k + rank)
            first.setdefault(hit.id, hit)
    return ordered_hits([Hit(i, s, first[i].text, first[i].metadata) for i, s in scores.items()], limit)
