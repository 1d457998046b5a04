"""A document's passage map (types.PassageMap): the stored form gives back spans and heading
paths exactly and the vectors as int8 codes whose scores stay within 2e-3 of float32's, and
malformed maps are refused."""

from __future__ import annotations

import numpy as np
import pytest

from ragembed.errors import InvalidInputError
from ragembed.types import Passage, PassageMap


def unit_rows(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_the_stored_form_gives_back_spans_headings_and_the_codes():
    headings = ((), ("Handbook", "Storage – freezer B7"), ("Handbook", "Storage – freezer B7"))
    original = PassageMap.of(np.array([[0, 700], [650, 1400], [1400, 2_000_000]]), unit_rows(3), headings)
    back = PassageMap(original.encoded)  # as a store gives it back
    assert back.spans.tolist() == [[0, 700], [650, 1400], [1400, 2_000_000]] and back.headings == headings
    assert np.array_equal(back.codes, original.codes) and np.array_equal(back.scales, original.scales)
    text = "x" * 1400
    assert back.passage(text, 1) == Passage("x" * 750, 650, 1400, headings[1])
    plain = PassageMap(PassageMap.of(np.array([[0, 5]]), unit_rows(1), [()]).encoded)
    assert plain.headings == () and plain.passage("hello world", 0) == Passage("hello", 0, 5)


def test_scores_stay_within_2e3_of_float32_and_keep_the_best_passage():
    passages, queries = unit_rows(2000, seed=1), unit_rows(50, seed=2)
    maps = [PassageMap.of(np.zeros((40, 2)), passages[i : i + 40]) for i in range(0, 2000, 40)]
    for query in queries:
        exact = passages @ query
        scores = np.concatenate(PassageMap.scores(maps, query))
        assert np.abs(scores - exact).max() < 2e-3
    query = passages[123] * 0.9 + queries[0] * 0.1  # one passage clearly best
    assert int(np.argmax(np.concatenate(PassageMap.scores(maps, query / np.linalg.norm(query))))) == 123
    assert PassageMap.scores([], queries[0]) == []


@pytest.mark.parametrize(
    ("spans", "vectors"),
    [
        (np.zeros((0, 2)), np.zeros((0, 4))),  # no passage
        (np.zeros((2, 3)), np.zeros((2, 4))),  # spans are (start, end) pairs
        (np.zeros((2, 2)), np.zeros((3, 4))),  # one vector per passage
        (np.zeros((2, 2)), np.zeros(4)),  # vectors are rows
    ],
)
def test_malformed_maps_are_refused(spans, vectors):
    with pytest.raises(InvalidInputError, match="passage map needs"):
        PassageMap.of(spans, vectors)


def test_a_map_with_headings_needs_one_path_per_passage():
    with pytest.raises(InvalidInputError, match="a heading path per passage: 1 for 2"):
        PassageMap.of(np.zeros((2, 2)), unit_rows(2), [("Title",)])
