"""Result order shared by the engine adapters: score descending, ties by document id, the order
the memory store defines, so every backend returns the same ranking for the same scores;
reciprocal rank fusion for every store that fuses stages itself; a rerank stage's new order. (How
an adapter asks for more hits while the cut-off is tied is in search/executor.py.)"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import replace
from typing import TypeVar

from ragembed.search.plan import Scored
from ragembed.types import Hit

K = TypeVar("K", bound=Hashable)


def ordered_hits(hits: list[Hit], limit: int) -> list[Hit]:
    """Score descending, ties by document id: the order the memory store defines."""
    return sorted(hits, key=lambda h: (-h.score, h.id))[:limit]


def top_keys(scores: Mapping[K, float], limit: int) -> list[K]:
    """The `limit` keys with the highest scores, ties by key: ordered_hits' order, for scores
    kept by key (a fusion's, a document's best passage's)."""
    return sorted(scores, key=lambda key: (-scores[key], key))[:limit]


def rrf_scores(rankings: Sequence[Sequence[K]], k: int, weights: Sequence[float] | None = None) -> dict[K, float]:
    """Reciprocal rank fusion: score = sum over rankings of weight / (k + rank), rank from 1, for
    whatever identifies a result (document ids here, row numbers in the memory store)."""
    scores: dict[K, float] = {}
    for ranking, weight in zip(rankings, weights or (1.0,) * len(rankings)):
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    return scores


def reciprocal_rank_fusion(
    rankings: Sequence[list[Hit]], limit: int, k: int, weights: Sequence[float] | None = None
) -> list[Hit]:
    """`rrf_scores` over hits, the top `limit` in ordered_hits' order; each fused hit is its first
    appearance (text, metadata, passage map) with the fused score."""
    first: dict[str, Hit] = {}
    for ranking in rankings:
        for hit in ranking:
            first.setdefault(hit.id, hit)
    scores = rrf_scores([[h.id for h in ranking] for ranking in rankings], k, weights)
    return [replace(first[i], score=scores[i]) for i in top_keys(scores, limit)]  # only the hits kept copied


def reranked(hits: Sequence[Hit], scored: Sequence[Scored], limit: int) -> list[Hit]:
    """`hits` with their rerank scores, the top `limit` in ordered_hits' order; a hit scored by a
    passage names that passage (read from its passage map)."""
    rescored = {h.id: (h, s) for h, s in zip(hits, scored)}
    kept = top_keys({i: s.score for i, (_, s) in rescored.items()}, limit)
    out = []
    for i in kept:
        hit, s = rescored[i]
        passage = hit.passage
        if s.passage is not None and hit.passage_map is not None:
            passage = hit.passage_map.passage(hit.text, s.passage)
        out.append(replace(hit, score=s.score, passage=passage))
    return out
