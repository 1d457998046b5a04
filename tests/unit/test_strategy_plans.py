"""Every strategy name -> the fields it stores and the shape of the plan it searches with."""

from __future__ import annotations

import numpy as np
import pytest

from ragembed.errors import InvalidInputError, UnsupportedStrategyError
from ragembed.muvera import MuveraShape
from ragembed.rerank import MaxSimScorer
from ragembed.search.plan import Fusion, KeywordSearch, Rerank, Rescore, VectorSearch
from ragembed.search.schema import Schema, VectorField
from ragembed.search.validation import check_plan
from ragembed.strategies import ColBERT, derive, parse_strategy
from ragembed.types import Datatype, DenseEmbeddings, EmbeddingKind, MultiVectorEmbeddings, Precision, SparseEmbeddings

DIM, K = 384, 10
RNG = np.random.default_rng(7)


def base(n: int) -> dict[EmbeddingKind, object]:
    dense = RNG.standard_normal((n, DIM)).astype(np.float32)
    return {
        EmbeddingKind.DENSE: DenseEmbeddings(dense / np.linalg.norm(dense, axis=1, keepdims=True)),
        EmbeddingKind.SPARSE: SparseEmbeddings(
            tuple(np.array([3, 17, 40], np.uint32) for _ in range(n)),
            tuple(np.array([1.0, 2.0, 0.5], np.float32) for _ in range(n)),
        ),
        EmbeddingKind.MULTIVECTOR: MultiVectorEmbeddings(
            tuple(RNG.standard_normal((5, 128)).astype(np.float32) for _ in range(n))
        ),
    }


def shape(plan: object) -> tuple:
    """A plan as nested tuples: what it searches, how many, and its stages."""
    if isinstance(plan, VectorSearch):
        return ("vector", plan.field, plan.limit, tuple(shape(p) for p in plan.prefetch))
    if isinstance(plan, KeywordSearch):
        return ("keyword", plan.text, plan.limit)
    if isinstance(plan, Rescore):
        return (
            "rescore",
            plan.field,
            plan.candidates,
            "by",
            plan.original,
            plan.limit,
            tuple(shape(p) for p in plan.prefetch),
        )
    assert isinstance(plan, Fusion)
    return ("rrf", plan.limit, plan.weights, tuple(shape(p) for p in plan.prefetch))


# name -> (fields stored, plan shape for k=10)
EXPECTED = {
    "dense": (["dense"], ("vector", "dense", 10, ())),
    "int8": (["dense", "dense_int8"], ("rescore", "dense_int8", 40, "by", "dense", 10, ())),
    "int8:norescore": (["dense", "dense_int8"], ("vector", "dense_int8", 10, ())),
    "binary": (["dense", "dense_binary_asym"], ("rescore", "dense_binary_asym", 100, "by", "dense", 10, ())),
    "binary:hamming": (["dense", "dense_binary"], ("rescore", "dense_binary", 100, "by", "dense", 10, ())),
    "binary:norescore": (["dense", "dense_binary_asym"], ("vector", "dense_binary_asym", 10, ())),
    "matryoshka:64": (["dense", "dense_d64"], ("vector", "dense_d64", 10, ())),
    "funnel:64": (["dense", "dense_d64"], ("vector", "dense", 10, (("vector", "dense_d64", 100, ()),))),
    "bm25": (["bm25"], ("vector", "bm25", 10, ())),
    "colbert": (["colbert"], ("vector", "colbert", 10, ())),
    "colbert:turbo4": (["colbert_turbo4"], ("vector", "colbert_turbo4", 10, ())),
    "colbert+dense:float16": (
        ["dense", "colbert_float16"],
        ("vector", "colbert_float16", 10, (("vector", "dense", 100, ()),)),
    ),
    "colbert+dense:turbo4:50": (
        ["dense", "colbert_turbo4"],
        ("vector", "colbert_turbo4", 10, (("vector", "dense", 50, ()),)),
    ),
    "colbert:int8": (["colbert_int8"], ("rescore", "colbert_int8", 40, "by", "colbert_int8", 10, ())),
    "colbert+dense:int8": (
        ["dense", "colbert_int8"],
        ("rescore", "colbert_int8", 40, "by", "colbert_int8", 10, (("vector", "dense", 100, ()),)),
    ),
    "colbert+dense:binary:50": (
        ["dense", "colbert_binary"],
        ("rescore", "colbert_binary", 100, "by", "colbert_binary", 10, (("vector", "dense", 50, ()),)),
    ),
    "colbert+muvera:k4p8r10:int8:30": (
        ["muvera_k4p8r10", "colbert_int8"],
        ("rescore", "colbert_int8", 40, "by", "colbert_int8", 10, (("vector", "muvera_k4p8r10", 30, ()),)),
    ),
    "colbert+muvera": (
        ["muvera_k5p16r20", "colbert"],
        ("vector", "colbert", 10, (("vector", "muvera_k5p16r20", 100, ()),)),
    ),
    "colbert+muvera:k4p8r10:turbo4:30": (
        ["muvera_k4p8r10", "colbert_turbo4"],
        ("vector", "colbert_turbo4", 10, (("vector", "muvera_k4p8r10", 30, ()),)),
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_strategy_stores_its_fields_and_plans_its_stages(name: str) -> None:
    strategy = parse_strategy(name)
    fields = strategy.fields(base(4))
    assert [f.name for f in fields] == EXPECTED[name][0] == strategy.field_names
    schema = Schema(tuple(fields))
    plan = strategy.plan(base(1), schema, K, "a query")
    assert shape(plan) == EXPECTED[name][1]
    check_plan(schema, plan)  # every plan a strategy makes is one the stores accept


def test_fusions_rank_each_stage_deeper_than_k_and_weight_them() -> None:
    hybrid = parse_strategy("hybrid")
    schema = Schema(tuple(hybrid.fields(base(4))))
    plan = hybrid.plan(base(1), schema, K, "q")
    assert isinstance(plan, Fusion) and plan.limit == K
    assert {p.field for p in plan.prefetch} == {"dense", "bm25"}
    assert all(p.limit >= K for p in plan.prefetch)
    keyword = parse_strategy("keyword-hybrid:0.3")
    plan = keyword.plan(base(1), Schema(tuple(keyword.fields(base(4)))), K, "q text")
    assert shape(plan)[0] == "rrf" and plan.weights == pytest.approx((0.7, 0.3))
    assert isinstance(plan.prefetch[0], KeywordSearch) and plan.prefetch[0].text == "q text"


def test_colbert_with_a_dense_first_stage_rescores_dense_candidates() -> None:
    strategy = parse_strategy("colbert+dense")
    schema = Schema(tuple(strategy.fields(base(4))))
    plan = strategy.plan(base(1), schema, K, "q")
    assert shape(plan)[:3] == ("vector", "colbert", K)
    assert [s[1] for s in shape(plan)[3]] == ["dense"]


def test_the_matryoshka_stage_searches_truncated_renormalised_vectors() -> None:
    strategy = parse_strategy("matryoshka:64")
    query = base(1)
    plan = strategy.plan(query, Schema(tuple(strategy.fields(base(4)))), K, "q")
    full = query[EmbeddingKind.DENSE].data[0]
    expected = full[:64] / np.linalg.norm(full[:64])
    np.testing.assert_allclose(plan.query.data[0], expected, rtol=1e-5)


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("densest", UnsupportedStrategyError),
        ("funnel:sixty", UnsupportedStrategyError),
        ("binary:fast", UnsupportedStrategyError),
        ("colbert+dense:int4", UnsupportedStrategyError),
        ("colbert:50", UnsupportedStrategyError),  # MaxSim over every document has no candidates
        ("colbert+dense:k4p8r10", UnsupportedStrategyError),  # a MUVERA shape without MUVERA
        ("colbert+dense:turbo4:turbo8", UnsupportedStrategyError),
        ("colbert+dense:turbo4:int8", UnsupportedStrategyError),  # tokens kept one way only
        ("colbert+muvera:k4p8", UnsupportedStrategyError),
        ("colbert+muvera:k11p8r10", InvalidInputError),
        ("colbert+dense:0", InvalidInputError),
        (42, InvalidInputError),
    ],
)
def test_unknown_strategy_names_are_refused_with_the_names_there_are(spec: object, error: type) -> None:
    with pytest.raises(error) as caught:
        parse_strategy(spec)  # type: ignore[arg-type]
    assert "strategy" in str(caught.value)


@pytest.mark.parametrize(
    "name",
    [
        "colbert:float16",
        "colbert:turbo8",
        "colbert+dense:turbo4",
        "colbert+dense",
        "colbert+dense:50",
        "colbert+muvera",
        "colbert+muvera:float16",
        "colbert+muvera:k4p16r10:turbo4:50",
        "colbert:int8",
        "colbert+dense:binary:30",
        "colbert+muvera:k4p16r10:int8:50",
    ],
)
def test_colbert_datatypes_round_trip_and_keep_their_tokens_in_a_field_of_their_own(name: str) -> None:
    strategy = parse_strategy(name)
    assert parse_strategy(strategy.name) == strategy and strategy.name == name
    tokens = strategy.fields(base(2))[-1]
    assert tokens.kind is EmbeddingKind.MULTIVECTOR and tokens.datatype is strategy.datatype
    assert tokens.precision is strategy.precision
    kept = strategy.precision if strategy.precision is not Precision.FLOAT32 else strategy.datatype
    assert tokens.name == ("colbert" if kept.value == "float32" else f"colbert_{kept.value}")


def test_quantized_colbert_tokens_keep_a_calibration_or_the_querys_values() -> None:
    """int8 tokens: one range per dimension over every token of the first documents; binary:
    the query tokens keep their values (asymmetric), as binary dense search does."""
    docs = base(3)
    int8 = parse_strategy("colbert+dense:int8").fields(docs)[-1]
    tokens = np.concatenate(docs[EmbeddingKind.MULTIVECTOR].vectors)
    np.testing.assert_allclose(int8.int8_calibration().lo, tokens.min(axis=0))
    np.testing.assert_allclose(int8.int8_calibration().hi, tokens.max(axis=0))
    binary = parse_strategy("colbert:binary").fields(docs)[-1]
    assert binary.asymmetric and binary.calibration is None
    query = docs[EmbeddingKind.MULTIVECTOR].vectors[0]
    np.testing.assert_array_equal(binary.scored_as_float(query, query=True), query)
    np.testing.assert_array_equal(binary.scored_as_float(query), np.where(query > 0, 1.0, -1.0))
    assert ColBERT("dense", precision="binary", oversampling=2).oversampling == 2.0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ColBERT("dense", datatype="turbo4", precision="int8"), "keeps float32 token vectors.*choose one"),
        (lambda: ColBERT("dense", oversampling=4), "oversampling applies to a quantized index"),
        (lambda: ColBERT("dense", precision="int8", oversampling=0), "oversampling must be a positive number"),
        (lambda: ColBERT(precision="int4"), "precision 'int4' is not one of"),
        (
            lambda: VectorField("c", EmbeddingKind.MULTIVECTOR, 8, "binary", datatype="float16"),
            "its datatype cannot be float16; choose one",
        ),
        (lambda: VectorField("b", EmbeddingKind.SPARSE, 0, "binary"), "only dense and multi-vector fields"),
    ],
)
def test_a_quantized_index_beside_tokens_they_replace_is_refused(make, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        make()


def test_colbert_names_are_canonical_whatever_order_their_parts_come_in() -> None:
    strategy = parse_strategy("colbert+muvera:50:turbo4:k4p16r10")
    assert strategy.name == "colbert+muvera:k4p16r10:turbo4:50"
    assert (strategy.candidates, strategy.muvera.dim) == (50, 10 * 16 * 16)
    assert parse_strategy("colbert+muvera:k5p16r20").name == "colbert+muvera"  # the default shape


def test_the_muvera_stage_searches_the_query_encoding_of_the_same_tokens() -> None:
    """Queries leave empty clusters empty, documents fill them with their nearest cluster's tokens
    (MUVERA's asymmetry): for a one-token text, each repetition's one occupied cluster agrees."""
    strategy = parse_strategy("colbert+muvera:k2p8r3")
    docs = base(4)
    fde, tokens = strategy.fields(docs)
    assert (fde.kind, fde.source, fde.dim, fde.distance) == (EmbeddingKind.DENSE, EmbeddingKind.MULTIVECTOR, 96, "dot")
    one_token = {EmbeddingKind.MULTIVECTOR: MultiVectorEmbeddings((docs[EmbeddingKind.MULTIVECTOR].vectors[0][:1],))}
    plan = strategy.plan(one_token, Schema((fde, tokens)), K, "q")
    first = plan.prefetch[0]
    assert first.field == fde.name and first.query.dim == 96
    as_query, as_document = first.query.data[0], derive(fde, one_token, for_query=False).data[0]
    occupied = as_query != 0
    assert occupied.sum() == 3 * 8  # one cluster of 8 projected dimensions per repetition
    np.testing.assert_allclose(as_query[occupied], as_document[occupied], rtol=1e-5)
    assert (as_document != 0).all()
    assert strategy.needs == {EmbeddingKind.MULTIVECTOR}  # no dense embedder needed


def test_a_muvera_field_keeps_its_shape_and_a_strategy_of_another_shape_is_refused() -> None:
    fde, tokens = parse_strategy("colbert+muvera:k2p8r3").fields(base(2))
    assert VectorField.from_dict(fde.to_dict()) == fde
    other = ColBERT(first_stage="muvera", muvera=MuveraShape(2, 8, 3, seed=7))  # same name, other projections
    with pytest.raises(UnsupportedStrategyError, match="holds MUVERA encodings"):
        other.plan(base(1), Schema((fde, tokens)), K, "q")
    with pytest.raises(InvalidInputError, match="MUVERA encodings k2p8r3 are float32 dense vectors of 96"):
        VectorField("muvera_k2p8r3", EmbeddingKind.DENSE, 95, distance="dot", muvera=fde.muvera)
    with pytest.raises(InvalidInputError, match="a MUVERA shape is a mapping"):
        VectorField("muvera_k2p8r3", EmbeddingKind.DENSE, 96, distance="dot", muvera={"k_sim": 2})
    with pytest.raises(InvalidInputError, match="dim_proj 256 exceeds the model's 128-dim token vectors"):
        parse_strategy("colbert+muvera:k2p256r3").fields(base(2))


def test_only_multivector_fields_take_a_datatype() -> None:
    with pytest.raises(InvalidInputError, match="only multi-vector fields take a datatype"):
        VectorField("dense", EmbeddingKind.DENSE, 8, datatype=Datatype.FLOAT16)
    with pytest.raises(InvalidInputError, match="datatype 'int4' is not one of"):
        VectorField("colbert", EmbeddingKind.MULTIVECTOR, 8, datatype="int4")  # type: ignore[arg-type]


def test_a_schema_saved_before_datatypes_reads_as_float32() -> None:
    saved = VectorField("colbert", EmbeddingKind.MULTIVECTOR, 8, distance="dot").to_dict()
    del saved["datatype"]
    assert VectorField.from_dict(saved).datatype is Datatype.FLOAT32
    half = VectorField("colbert_float16", EmbeddingKind.MULTIVECTOR, 8, distance="dot", datatype="float16")
    assert VectorField.from_dict(half.to_dict()) == half


def test_a_matryoshka_dimension_over_the_models_is_refused() -> None:
    with pytest.raises(UnsupportedStrategyError, match="exceeds the model's 384"):
        parse_strategy("matryoshka:512").fields(base(2))


MAXSIM = MaxSimScorer("colbert", np.ones((2, 8), dtype=np.float32))


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (lambda q: VectorSearch("dense", q, 0), "limit \\(k\\) must be a positive whole number"),
        (lambda q: VectorSearch("dense", q, True), "limit \\(k\\) must be a positive whole number"),
        (lambda q: Fusion((), 5), "at least one prefetch"),
        (lambda q: Fusion((VectorSearch("dense", q, 5),), 5, weights=(1.0, 2.0)), "one non-negative weight"),
        (lambda q: Fusion((VectorSearch("dense", q, 5),), 5, rrf_k=-1), "rrf_k"),
        (lambda q: Fusion((VectorSearch("dense", q, 5),), 5, rrf_k=2.5), "rrf_k"),
        (lambda q: KeywordSearch("  ", 5), "non-empty query text"),
        (lambda q: VectorSearch("nope", q, 5), "nope"),
        (lambda q: "dense", "VectorSearch, Rescore, Fusion, KeywordSearch or Rerank"),
        (lambda q: Fusion((Rerank((VectorSearch("dense", q, 5),), 5, MAXSIM),), 5), "root of a plan"),
        (lambda q: Rerank((VectorSearch("dense", q, 5), VectorSearch("dense", q, 5)), 5, MAXSIM), "one first stage"),
        (lambda q: Rerank((VectorSearch("dense", q, 5),), 10, MAXSIM), "returns 10 hits from 5 candidates"),
        (lambda q: Rerank((VectorSearch("dense", q, 5),), 5, MAXSIM), "multi-vector field 'colbert'.*'colbert'"),
    ],
)
def test_bad_plans_are_refused_before_any_engine_sees_them(plan, message: str) -> None:
    """(MAXSIM reads field 'colbert', which this dense-only schema lacks.)"""
    schema = Schema(tuple(parse_strategy("dense").fields(base(2))))
    with pytest.raises(Exception, match=message):
        check_plan(schema, plan(base(1)[EmbeddingKind.DENSE]))


def test_a_rescore_step_is_the_two_stages_it_stands_for() -> None:
    plan = parse_strategy("int8").plan(base(1), Schema(tuple(parse_strategy("int8").fields(base(4)))), 3, "q")
    assert isinstance(plan, Rescore) and plan.oversampling == 4.0 and plan.candidates == 12
    assert shape(plan.as_stages()) == ("vector", "dense", 3, (("vector", "dense_int8", 12, ()),))
    assert Rescore("dense_int8", "dense", plan.query, 3, 1.2).candidates == 4  # never fewer than limit


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (lambda q: Rescore("dense", "dense", q, 5, 4.0), "quantized .* 'dense' is float32"),
        (lambda q: Rescore("dense_int8", "dense_int8", q, 5, 4.0), "float32 dense field"),
        (lambda q: Rescore("dense_int8", "dense", q, 5, 0.5), "oversampling .* >= 1"),
        (lambda q: Rescore("dense_int8", "dense", q, 5, True), "oversampling"),
        (lambda q: Rescore("dense_int8", "dense", q, 5, float("inf")), "oversampling"),
        (lambda q: Rescore("dense_int8", "dense", q, 0, 4.0), "limit \\(k\\) must be a positive whole number"),
    ],
)
def test_bad_rescore_steps_are_refused(plan, message: str) -> None:
    schema = Schema(tuple(parse_strategy("int8").fields(base(4))))
    with pytest.raises(InvalidInputError, match=message):
        check_plan(schema, plan(base(1)[EmbeddingKind.DENSE]))


def test_a_quantized_multivector_field_is_rescored_by_its_own_tokens() -> None:
    strategy = parse_strategy("colbert+dense:int8")
    schema = Schema(tuple(strategy.fields(base(4))))
    tokens = base(1)[EmbeddingKind.MULTIVECTOR]
    with pytest.raises(InvalidInputError, match="keeps its own float32 token vectors: Rescore 'colbert_int8' with"):
        check_plan(schema, Rescore("colbert_int8", "dense", tokens, 5, 4.0))
    with pytest.raises(InvalidInputError, match="oversampling .* >= 1"):
        check_plan(schema, Rescore("colbert_int8", "colbert_int8", tokens, 5, 0.5))


def test_a_plan_with_two_query_vectors_or_another_dimension_is_refused() -> None:
    schema = Schema(tuple(parse_strategy("dense").fields(base(2))))
    with pytest.raises(InvalidInputError, match="one query vector"):
        check_plan(schema, VectorSearch("dense", base(2)[EmbeddingKind.DENSE], 5))
    with pytest.raises(InvalidInputError, match="384-dimensional"):
        check_plan(schema, VectorSearch("dense", DenseEmbeddings(np.ones((1, 64), np.float32)), 5))


def test_a_keyword_search_takes_no_stages_of_its_own() -> None:
    assert KeywordSearch("text", 5).prefetch == ()
    with pytest.raises(TypeError):
        KeywordSearch("text", 5, (KeywordSearch("other", 5),))  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("name", "fields", "embedders"),
    [
        ("colbert@colbert_b", ["colbert__colbert_b"], {"colbert_b": "multivector"}),
        (
            "colbert+dense:turbo4:50@colbert_b,dense=e5",
            ["dense__e5", "colbert_turbo4__colbert_b"],
            {"colbert_b": "multivector", "e5": "dense"},
        ),
        ("hybrid@sparse=bm25_fr", ["dense", "bm25__bm25_fr"], {"dense": "dense", "bm25_fr": "sparse"}),
        ("binary@e5", ["dense__e5", "dense_binary_asym__e5"], {"e5": "dense"}),
        (
            "colbert+muvera@colbert_b",
            ["muvera_k5p16r20__colbert_b", "colbert__colbert_b"],
            {"colbert_b": "multivector"},
        ),
    ],
)
def test_strategies_that_name_other_embedders_keep_their_fields_apart(name, fields, embedders) -> None:
    strategy = parse_strategy(name)
    assert strategy.name == name and parse_strategy(strategy.name) == strategy  # names round-trip
    assert strategy.field_names == fields
    assert strategy.embedders == embedders
    docs = {strategy.using.of(EmbeddingKind(kind)): emb for kind, emb in base(4).items()}
    made = strategy.fields(docs)
    assert [f.name for f in made] == fields
    assert {f.source for f in made} <= set(embedders)  # each field says which embedder it comes from
    schema = Schema(tuple(made))
    query = {strategy.using.of(EmbeddingKind(kind)): emb for kind, emb in base(1).items()}
    check_plan(schema, strategy.plan(query, schema, K, "q"))


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("colbert@sparse=x", "not understood.*kinds it uses \\(multivector\\)"),
        ("dense@col our", "embedder name 'col our'"),
        ("dense@a__b", "embedder name 'a__b'"),
        ("keyword@x", "not understood"),
        ("hybrid@a,b", "not understood"),
    ],
)
def test_bad_embedder_names_in_a_strategy_are_refused(spec: str, says: str) -> None:
    with pytest.raises((InvalidInputError, UnsupportedStrategyError), match=says):
        parse_strategy(spec)
