"""Reciprocal rank fusion: one definition for the memory store (row numbers) and the adapters
that fuse stages themselves (hits)."""

from __future__ import annotations

import pytest

from ragembed.search.ranking import reciprocal_rank_fusion, rrf_scores
from ragembed.types import Hit

pytestmark = pytest.mark.unit


def test_rrf_scores_sum_weighted_reciprocal_ranks():
    scores = rrf_scores([[7, 3], [3, 9]], k=60, weights=[2.0, 1.0])
    assert scores == pytest.approx({7: 2 / 61, 3: 2 / 62 + 1 / 61, 9: 1 / 62})
    assert rrf_scores([["a"], ["a"]], k=0) == {"a": 2.0}  # unweighted: every ranking weighs 1


def test_fused_hits_keep_their_first_appearance_and_the_memory_store_order():
    first = [Hit("b", 0.9, "text of b", {"year": 1}), Hit("a", 0.8)]
    second = [Hit("a", 5.0), Hit("b", 4.0, "another text")]
    fused = reciprocal_rank_fusion([first, second], limit=2, k=60)
    assert [h.id for h in fused] == ["a", "b"]  # equal scores: ties by id
    assert fused[1].text == "text of b" and fused[1].metadata == {"year": 1}
    assert reciprocal_rank_fusion([first, second], limit=1, k=60, weights=[3.0, 1.0])[0].id == "b"
