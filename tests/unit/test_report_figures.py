"""The demo's choice table and its bytes-per-document column, without a model."""

from __future__ import annotations

import pytest

from ragembed.evaluation.report import choice_table
from ragembed.evaluation.runner import StrategyRun, field_bytes
from ragembed.search.schema import VectorField
from ragembed.types import Datatype, EmbeddingKind, Precision


@pytest.mark.parametrize(
    ("datatype", "per_token"), [("float32", 512), ("float16", 256), ("turbo8", 128), ("turbo4", 64)]
)
def test_token_bytes_follow_the_fields_datatype(datatype, per_token):
    field = VectorField("colbert", EmbeddingKind.MULTIVECTOR, 128, datatype=Datatype(datatype))
    assert field_bytes(field, {"multivector": 10.0}) == 10 * per_token  # tokens per document, by embedder


@pytest.mark.parametrize(("precision", "expected"), [("float32", 1536), ("int8", 384), ("binary", 48)])
def test_dense_bytes_follow_the_fields_precision(precision, expected):
    calibration = {"lo": [0.0] * 384, "hi": [1.0] * 384} if precision == "int8" else None
    field = VectorField("dense", EmbeddingKind.DENSE, 384, precision=Precision(precision), calibration=calibration)
    assert field_bytes(field, {}) == expected


def test_a_long_strategy_name_keeps_the_columns_aligned():
    runs = [
        StrategyRun(name, "memory", {"ndcg@10": score, "recall@100": 0.9}, {"p50": 1.0}, 1536.0)
        for name, score in (("dense", 0.6), ("colbert+dense:turbo4", 0.7))
    ]
    header, rule, *rows = choice_table(runs).splitlines()
    assert rows[0].startswith("colbert+dense:turbo4  ")
    assert {len(line) for line in (header, rule, *rows)} == {len(header)}


@pytest.mark.parametrize(("precision", "per_passage"), [("float32", 1536), ("int8", 384), ("binary", 48)])
def test_passage_bytes_are_one_vector_per_passage(precision, per_passage):
    calibration = {"lo": [0.0] * 384, "hi": [1.0] * 384} if precision == "int8" else None
    field = VectorField(
        "dense",
        EmbeddingKind.MULTIVECTOR,
        384,
        precision=Precision(precision),
        distance="dot",
        calibration=calibration,
        asymmetric=precision == "binary",
        per_passage=True,
    )
    assert field_bytes(field, {"dense": 2.5}) == 2.5 * per_passage  # passages per document, by embedder


def test_bm25_over_passages_costs_the_terms_of_every_passage():
    field = VectorField("bm25_passages", EmbeddingKind.SPARSE, 0, distance="dot", idf=True, per_passage=True)
    # 8 bytes a term (uint32 index + float32 weight), counted over a document's passages
    assert field_bytes(field, {"sparse": 100.0, "sparse/passages": 130.0}) == 8 * 130
