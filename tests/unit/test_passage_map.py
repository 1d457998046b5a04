"""A document's passage map (types.PassageMap): the stored form gives back the spans exactly and
the vectors as float16, and malformed maps are refused."""

from __future__ import annotations

import numpy as np
import pytest

from ragembed.errors import InvalidInputError
from ragembed.types import PassageMap


def test_the_stored_form_gives_back_spans_and_float16_vectors():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    original = PassageMap(np.array([[0, 700], [650, 1400], [1400, 2_000_000]]), vectors)
    back = PassageMap.decoded(original.encoded())
    assert back.spans.tolist() == [[0, 700], [650, 1400], [1400, 2_000_000]]
    assert back.vectors.dtype == np.float16 and np.array_equal(back.vectors, vectors.astype(np.float16))
    query = vectors[1]
    assert np.abs(back.scores(query) - vectors @ query).max() < 1e-3  # float16: within 1e-3 of float32
    assert int(np.argmax(back.scores(query))) == 1


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
        PassageMap(spans, vectors)
