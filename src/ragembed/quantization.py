"""int8 and binary quantization of dense float32 vectors, and the kernels that score against the
codes: pure functions, as in sentence-transformers' `quantize_embeddings`. Strategies fit the
int8 calibration, stores quantize (the memory store and Qdrant local mode here, the engines
natively), so this module belongs to neither embedders nor stores.

int8 maps each dimension's calibrated [min, max] onto 256 levels. The calibration is fitted on
the corpus once and stored with the collection, so later documents and every query use the same
ranges. Binary keeps one sign bit per dimension, packed 8 to a byte (32x smaller than float32).
Both lose some ranking quality, which rescoring candidates with the float32 vectors wins back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ragembed.errors import DimensionMismatchError, InvalidInputError
from ragembed.types import DenseEmbeddings, Precision


@dataclass(frozen=True, eq=False)
class Int8Calibration:
    """Per-dimension ranges: value `lo` maps to -128 and `hi` to 127."""

    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def fit(cls, embeddings: DenseEmbeddings) -> Int8Calibration:
        if embeddings.precision is not Precision.FLOAT32 or len(embeddings) == 0:
            raise InvalidInputError("calibrate int8 on a non-empty set of float32 embeddings")
        return cls(embeddings.data.min(axis=0), embeddings.data.max(axis=0))

    @property
    def dim(self) -> int:
        return int(self.lo.shape[0])

    @property
    def step(self) -> np.ndarray:
        return np.asarray(np.maximum((self.hi - self.lo) / 255.0, 1e-12), dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"lo": self.lo.astype(float).tolist(), "hi": self.hi.astype(float).tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Int8Calibration:
        lo = np.asarray(data["lo"], dtype=np.float32)
        hi = np.asarray(data["hi"], dtype=np.float32)
        if lo.shape != hi.shape or lo.ndim != 1:
            raise InvalidInputError("int8 calibration needs two equal-length lists 'lo' and 'hi'")
        return cls(lo, hi)


def quantize_int8(embeddings: DenseEmbeddings, calibration: Int8Calibration) -> DenseEmbeddings:
    """float32 -> int8 with the given ranges; values outside them are clipped."""
    _check(embeddings, calibration.dim)
    codes = np.rint((embeddings.data - calibration.lo) / calibration.step) - 128
    return DenseEmbeddings(np.clip(codes, -128, 127).astype(np.int8), Precision.INT8)


def dequantize_int8(codes: np.ndarray, calibration: Int8Calibration) -> np.ndarray:
    """int8 codes -> float32 approximations of the original vectors."""
    return np.asarray((codes.astype(np.float32) + 128.0) * calibration.step + calibration.lo, dtype=np.float32)


def quantize_binary(embeddings: DenseEmbeddings) -> DenseEmbeddings:
    """float32 -> sign bits (1 where the value is > 0), packed 8 per byte."""
    _check(embeddings, None)
    if embeddings.dim % 8:
        raise InvalidInputError(f"binary quantization needs a dimension divisible by 8, got {embeddings.dim}")
    return DenseEmbeddings(np.packbits(embeddings.data > 0, axis=1), Precision.BINARY)


def quantized_as_float(
    vectors: np.ndarray, precision: Precision, calibration: Int8Calibration | None, keep_values: bool = False
) -> np.ndarray:
    """float32 vectors whose dot products equal the quantized scores, for scoring quantized vectors
    with a float32 kernel (MaxSim over token vectors; engines without native quantization): int8,
    the de-quantized codes; binary, +-1 per sign bit (so a dot product is dim - 2 * Hamming
    distance), or the vectors themselves with keep_values (the query of asymmetric binary search)."""
    if precision is Precision.INT8:
        if calibration is None:
            raise InvalidInputError("int8 scores need the field's calibration")
        return dequantize_int8(quantize_int8(DenseEmbeddings(vectors), calibration).data, calibration)
    if precision is Precision.BINARY and not keep_values:
        return np.where(vectors > 0, 1.0, -1.0).astype(np.float32)
    return vectors


def hamming_similarity(query_bits: np.ndarray, doc_bits: np.ndarray) -> np.ndarray:
    """dim - 2 * Hamming distance: the dot product of the +-1 vectors the bits stand for."""
    diff = np.bitwise_xor(doc_bits, query_bits[None, :])
    distance = np.bitwise_count(diff).sum(axis=1, dtype=np.int64)
    return np.asarray(query_bits.shape[0] * 8 - 2 * distance, dtype=np.float32)


def int8_similarity(query: np.ndarray, doc_codes: np.ndarray, calibration: Int8Calibration) -> np.ndarray:
    """dequantize(codes) . query for every document, without de-quantizing the whole matrix:
    ((c + 128) * step + lo) . q = c . (step * q) + (128 * step + lo) . q."""
    weights = (calibration.step * query).astype(np.float32)
    offset = np.float32((128.0 * calibration.step + calibration.lo) @ query)
    return _scan_in_chunks(doc_codes, lambda codes: codes.astype(np.float32) @ weights + offset)


def asymmetric_binary_similarity(query: np.ndarray, doc_bits: np.ndarray) -> np.ndarray:
    """q . s for each document's +-1 vector s (its sign bits): 2 * (q . bits) - sum(q)."""
    query = np.asarray(query, dtype=np.float32)
    total = query.sum()
    return _scan_in_chunks(
        doc_bits, lambda bits: 2.0 * (np.unpackbits(bits, axis=1).astype(np.float32) @ query) - total
    )


def _scan_in_chunks(
    rows: np.ndarray, score: Callable[[np.ndarray], np.ndarray], chunk_rows: int = 65_536
) -> np.ndarray:
    """score() over `rows` a chunk at a time, so its float32 temporary stays small (100 MB for
    65,536 rows of 384 dims) however many documents the store holds."""
    scores = np.empty(len(rows), dtype=np.float32)
    for start in range(0, len(rows), chunk_rows):
        scores[start : start + chunk_rows] = score(rows[start : start + chunk_rows])
    return scores


def _check(embeddings: DenseEmbeddings, dim: int | None) -> None:
    if embeddings.precision is not Precision.FLOAT32:
        raise InvalidInputError(f"quantize float32 embeddings, got {embeddings.precision.value}")
    if dim is not None and embeddings.dim != dim:
        raise DimensionMismatchError(
            f"vectors have dimension {embeddings.dim} but the int8 calibration has {dim}; "
            "use the model the collection was indexed with"
        )
