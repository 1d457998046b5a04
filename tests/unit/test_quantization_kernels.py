"""The memory store's quantized scoring kernels against plain numpy on the vectors they stand for."""

from __future__ import annotations

import numpy as np
import pytest

from ragembed.errors import DimensionMismatchError, InvalidInputError
from ragembed.quantization import (
    Int8Calibration,
    asymmetric_binary_similarity,
    dequantize_int8,
    hamming_similarity,
    int8_similarity,
    quantize_binary,
    quantize_int8,
)
from ragembed.types import DenseEmbeddings

RNG = np.random.default_rng(11)
DOCS = DenseEmbeddings(RNG.standard_normal((300, 64)).astype(np.float32))
QUERY = RNG.standard_normal(64).astype(np.float32)


def signs(vectors: np.ndarray) -> np.ndarray:
    return np.where(vectors > 0, 1.0, -1.0).astype(np.float32)


def test_binary_codes_are_the_sign_bits_packed_eight_a_byte() -> None:
    bits = quantize_binary(DOCS).data
    assert bits.shape == (300, 8) and bits.dtype == np.uint8
    np.testing.assert_array_equal(np.unpackbits(bits, axis=1).astype(bool), DOCS.data > 0)


def test_hamming_similarity_is_the_dot_product_of_the_sign_vectors() -> None:
    bits = quantize_binary(DOCS).data
    query_bits = quantize_binary(DenseEmbeddings(QUERY[None, :])).data[0]
    expected = signs(DOCS.data) @ signs(QUERY)
    np.testing.assert_array_equal(hamming_similarity(query_bits, bits), expected)


def test_asymmetric_binary_scores_the_query_values_against_the_sign_vectors() -> None:
    bits = quantize_binary(DOCS).data
    np.testing.assert_allclose(
        asymmetric_binary_similarity(QUERY, bits), signs(DOCS.data) @ QUERY, rtol=1e-5, atol=1e-4
    )


def test_int8_codes_round_trip_within_half_a_step_and_score_like_their_dequantized_vectors() -> None:
    calibration = Int8Calibration.fit(DOCS)
    codes = quantize_int8(DOCS, calibration).data
    assert codes.dtype == np.int8
    restored = dequantize_int8(codes, calibration)
    assert np.all(np.abs(restored - DOCS.data) <= calibration.step / 2 + 1e-5)
    np.testing.assert_allclose(int8_similarity(QUERY, codes, calibration), restored @ QUERY, rtol=1e-4, atol=1e-3)


def test_int8_values_outside_the_calibrated_range_are_clipped() -> None:
    calibration = Int8Calibration.fit(DOCS)
    far = DenseEmbeddings(np.full((1, 64), 1e3, np.float32))
    assert np.all(quantize_int8(far, calibration).data == 127)


def test_a_calibration_round_trips_through_its_saved_form_and_bad_forms_are_refused() -> None:
    calibration = Int8Calibration.fit(DOCS)
    again = Int8Calibration.from_dict(calibration.to_dict())
    np.testing.assert_array_equal(again.lo, calibration.lo)
    with pytest.raises(InvalidInputError, match="equal-length"):
        Int8Calibration.from_dict({"lo": [0.0, 1.0], "hi": [1.0]})


def test_wrong_dimensions_and_widths_are_refused() -> None:
    calibration = Int8Calibration.fit(DOCS)
    with pytest.raises(DimensionMismatchError):
        quantize_int8(DenseEmbeddings(np.ones((1, 32), np.float32)), calibration)
    with pytest.raises(InvalidInputError, match="divisible by 8"):
        quantize_binary(DenseEmbeddings(np.ones((1, 12), np.float32)))
