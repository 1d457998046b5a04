"""The one Qdrant mapping both adapters spell in their API: each strategy's field layouts and the
query each plan becomes, on a server or Edge (native quantization) and in local mode (none)."""

from __future__ import annotations

import numpy as np
import pytest

from ragembed.search.schema import Schema
from ragembed.stores.qdrant.mapping import QuantizedSearch, Query, query_of, vector_layout
from ragembed.strategies import parse_strategy
from ragembed.types import DenseEmbeddings, EmbeddingKind, MultiVectorEmbeddings, Precision

K = 10
RNG = np.random.default_rng(3)


def base(n: int) -> dict[EmbeddingKind, object]:
    dense = RNG.standard_normal((n, 64)).astype(np.float32)
    tokens = tuple(RNG.standard_normal((5, 16)).astype(np.float32) for _ in range(n))
    return {
        EmbeddingKind.DENSE: DenseEmbeddings(dense / np.linalg.norm(dense, axis=1, keepdims=True)),
        EmbeddingKind.MULTIVECTOR: MultiVectorEmbeddings(tokens),
    }


def planned(name: str, native_quantization: bool) -> tuple[Schema, Query]:
    strategy = parse_strategy(name)
    schema = Schema(tuple(strategy.fields(base(4))))
    return schema, query_of(strategy.plan(base(1), schema, K, "q"), schema, native_quantization)


def outline(query: Query) -> tuple:
    return (query.field, query.limit, query.quantized, tuple(outline(p) for p in query.prefetch))


@pytest.mark.parametrize(
    ("name", "native", "expected"),
    [
        ("dense", True, ("dense", K, None, ())),
        # Rescore: one query on the quantized index, rescored natively; local mode has no quantized
        # index, so it runs the two stages it stands for on client-side quantized vectors.
        ("int8", True, ("dense_int8", K, QuantizedSearch(rescore=True, oversampling=4.0), ())),
        ("int8", False, ("dense", K, None, (("dense_int8", 4 * K, None, ()),))),
        ("binary", True, ("dense_binary_asym", K, QuantizedSearch(rescore=True, oversampling=10.0), ())),
        # A quantized field searched without rescoring says so: Qdrant would rescore by default.
        ("int8:norescore", True, ("dense_int8", K, QuantizedSearch(rescore=False), ())),
        ("int8:norescore", False, ("dense_int8", K, None, ())),
        ("funnel:32", True, ("dense", K, None, (("dense_d32", 10 * K, None, ()),))),
        ("colbert", True, ("colbert", K, None, ())),
    ],
)
def test_each_plan_becomes_one_qdrant_query(name: str, native: bool, expected: tuple) -> None:
    assert outline(planned(name, native)[1]) == expected


@pytest.mark.parametrize(
    ("name", "field", "native", "quantization", "query_8bit", "multivector"),
    [
        ("dense", "dense", True, Precision.FLOAT32, False, False),
        ("int8", "dense_int8", True, Precision.INT8, False, False),
        ("int8", "dense_int8", False, Precision.FLOAT32, False, False),  # local mode: client-side
        ("binary", "dense_binary_asym", True, Precision.BINARY, True, False),
        ("binary:hamming", "dense_binary", True, Precision.BINARY, False, False),
        ("colbert", "colbert", True, Precision.FLOAT32, False, True),
    ],
)
def test_each_field_has_one_layout(
    name: str, field: str, native: bool, quantization: Precision, query_8bit: bool, multivector: bool
) -> None:
    schema, _ = planned(name, native)
    layout = vector_layout(schema[field], native_quantization=native)
    assert (layout.quantization, layout.query_8bit, layout.multivector) == (quantization, query_8bit, multivector)
    assert layout.size == schema[field].dim and layout.cosine == (schema[field].distance == "cosine")


def test_a_payload_without_the_metadata_json_copy_reads_its_metadata_object():
    """Points from an earlier ragembed, or written by another program, carry no metadata_json."""
    from ragembed.stores.qdrant.mapping import document_of, hit_of, metadata_of

    payload = {"doc_id": "a", "text": "Bees make honey.", "metadata": {"year": 2020, "lang": "en"}}
    assert metadata_of(payload) == {"year": 2020, "lang": "en"}
    assert document_of(payload).metadata == {"year": 2020, "lang": "en"}
    assert hit_of({"doc_id": "b", "text": "t"}, 0.5).metadata == {}
    assert metadata_of({"metadata_json": '{"x": 0.1}', "metadata": {"x": 0.2}}) == {"x": 0.1}


def fused_search(plan: object, passages: Schema | None, rankings: dict[str, list[str]]) -> tuple[list, list]:
    """`plan` run by executor.by_stage against a scripted engine whose every vector search ranks
    the documents `rankings[field]` (a passage search: one passage a document); each round's
    requests and the hits."""
    from ragembed.search import executor
    from ragembed.stores.qdrant.mapping import DocumentPoints, document_points, one_query
    from ragembed.types import Hit

    asked: list[list[object]] = []

    def send(asks: list[executor.Ask]) -> list[list[Hit]]:
        asked.append([ask.request for ask in asks])
        answers = []
        for ask in asks:
            if isinstance(ask.request, DocumentPoints):
                answers.append([Hit(i, 0.0, f"text of {i}") for i in reversed(ask.request.ids)])  # any order
            else:
                ranked = rankings[ask.request.plan.field]
                answers.append([Hit(i, 1.0 - n / 10) for n, i in enumerate(ranked)])
        return answers

    def query(stage: object, qfilter: object, documents: bool) -> executor.Steps[list[Hit]]:
        return one_query(stage, qfilter, passages, documents)

    def restrict(qfilter: object, ids: list[str]) -> object:
        raise AssertionError("no stage of hybrid is restricted to another's candidates")

    return asked, executor.run(executor.by_stage(plan, None, query, restrict, document_points), send)


@pytest.mark.parametrize("passages", [False, True], ids=["whole documents", "dense over passage points"])
def test_a_fusion_reads_only_its_hits_documents_once(passages: bool):
    """Candidate stages ask for ids and scores only (the engine parses a point's whole payload to
    return any of it), a passage stage too; the fused top k's documents are read in one request,
    kept in the fused order."""
    from dataclasses import replace

    from ragembed.stores.qdrant.mapping import DocumentPoints, PassageSearch, PointSearch
    from ragembed.types import SparseEmbeddings

    strategy = parse_strategy("hybrid")
    sparse = SparseEmbeddings((np.array([1, 5], dtype=np.uint32),), (np.array([1.0, 2.0], dtype=np.float32),))
    query = {**base(1), EmbeddingKind.SPARSE: sparse}
    schema = Schema(tuple(strategy.fields({**base(4), EmbeddingKind.SPARSE: sparse})))
    if passages:
        passage = {"kind": EmbeddingKind.MULTIVECTOR, "distance": "dot", "per_passage": True}  # as Retriever makes it
        schema = Schema(tuple(replace(f, **passage) if f.name == "dense" else f for f in schema.fields))
    plan = strategy.plan(query, schema, 2, "q")
    asked, hits = fused_search(plan, schema if passages else None, {"bm25": ["a", "b", "c"], "dense": ["c", "d", "a"]})

    first, second = asked
    dense_stage = PassageSearch if passages else PointSearch
    assert sorted(type(r).__name__ for r in first) == sorted(["PointSearch", dense_stage.__name__])
    assert all(r.documents is False for r in first if isinstance(r, PointSearch))
    assert second == [DocumentPoints(("a", "c"))]  # RRF: a ranks 1 and 3, c ranks 3 and 1; ties by id
    assert [(h.id, h.text) for h in hits] == [("a", "text of a"), ("c", "text of c")]
    assert hits[0].score == hits[1].score == 1 / 61 + 1 / 63
