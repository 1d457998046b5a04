"""The Retriever end to end, with the real default model on real SciFact abstracts."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from ragembed import DenseEmbedder, EmbeddingKind, MemoryStore, Quantized, Retriever, parse_strategy
from ragembed.errors import EncoderMismatchError

STRATEGIES = ["dense", "int8", "binary", "funnel:64", "matryoshka:64", "bm25", "hybrid"]
QUERIES = [
    "vitamin D and bone health",
    "tumour growth in mice",
    "insulin resistance in obesity",
    "antibiotic resistance of bacteria",
    "DNA repair mechanisms",
]


@pytest.fixture(scope="module")
def retriever(scifact_docs, dense_embedder, bm25_embedder):
    r = Retriever(MemoryStore(), STRATEGIES, embedder=dense_embedder, sparse_embedder=bm25_embedder)
    r.index(scifact_docs)
    return r


def test_every_strategy_finds_a_document_by_its_own_title(retriever, scifact_docs):
    for doc in scifact_docs[:10]:
        for strategy in STRATEGIES:
            if strategy == "matryoshka:64":
                continue  # 64 of MiniLM's 384 dims is a rough sketch; checked below instead
            assert retriever.search(doc.metadata["title"], k=1, strategy=strategy)[0].id == doc.id, strategy


def test_quantized_and_funnel_strategies_agree_with_exact_dense(retriever):
    for strategy in ("int8", "binary", "funnel:64"):
        overlap = [
            len(
                {h.id for h in retriever.search(q, k=10, strategy=strategy)} & {h.id for h in retriever.search(q, k=10)}
            )
            / 10
            for q in QUERIES
        ]
        assert sum(overlap) / len(overlap) >= 0.9, (strategy, overlap)


def test_binary_strategy_names_round_trip():
    variants = [
        Quantized(),
        Quantized(rescore=False),
        Quantized(asymmetric=False),
        Quantized(asymmetric=False, rescore=False),
    ]
    assert [v.name for v in variants] == ["binary", "binary:norescore", "binary:hamming", "binary:hamming:norescore"]
    assert [v.field_names[1] for v in variants] == ["dense_binary_asym"] * 2 + ["dense_binary"] * 2
    assert [parse_strategy(v.name) for v in variants] == variants


def test_truncated_matryoshka_search_is_rougher_but_related(retriever):
    overlap = [
        len(
            {h.id for h in retriever.search(q, k=10, strategy="matryoshka:64")}
            & {h.id for h in retriever.search(q, k=10)}
        )
        / 10
        for q in QUERIES
    ]
    assert 0.3 <= sum(overlap) / len(overlap) < 1.0


def test_hybrid_fuses_bm25_and_dense(retriever):
    for q in QUERIES:
        dense = {h.id for h in retriever.search(q, k=100, strategy="dense")}
        sparse = {h.id for h in retriever.search(q, k=100, strategy="bm25")}
        hybrid = retriever.search(q, k=10, strategy="hybrid")
        assert {h.id for h in hybrid} <= dense | sparse
        assert [h.score for h in hybrid] == sorted((h.score for h in hybrid), reverse=True)


def test_search_many_and_asearch_match_search(retriever):
    many = retriever.search_many(QUERIES, k=5, strategy="binary")
    assert [[h.id for h in hits] for hits in many] == [
        [h.id for h in retriever.search(q, k=5, strategy="binary")] for q in QUERIES
    ]

    async def both():
        return await asyncio.gather(*(retriever.asearch(q, k=5, strategy="hybrid") for q in QUERIES))

    async_hits = asyncio.run(both())
    assert [[h.id for h in hits] for hits in async_hits] == [
        [h.id for h in retriever.search(q, k=5, strategy="hybrid")] for q in QUERIES
    ]


def test_filters_through_the_retriever(retriever, scifact_docs):
    title = scifact_docs[3].metadata["title"]
    hits = retriever.search("cells", k=5, filter={"title": title})
    assert [h.id for h in hits] == [scifact_docs[3].id]


def test_reindexing_is_idempotent(retriever, scifact_docs):
    before = [h.id for h in retriever.search(QUERIES[0], k=10, strategy="hybrid")]
    retriever.index(scifact_docs[:30])
    assert retriever.count() == len(scifact_docs)
    assert [h.id for h in retriever.search(QUERIES[0], k=10, strategy="hybrid")] == before


def test_collection_persists_with_its_calibration_and_bm25_state(tmp_path, scifact_docs, dense_embedder):
    uri = f"memory:{tmp_path}"
    with Retriever(uri, ["int8", "hybrid"], embedder=dense_embedder) as first:
        first.index(scifact_docs[:60])
        expected = {s: [h.id for h in first.search(QUERIES[1], k=10, strategy=s)] for s in ("int8", "hybrid", "bm25")}
        state = first.store.schema.encoders[EmbeddingKind.SPARSE]
    with Retriever(uri, ["int8", "hybrid"], embedder=dense_embedder) as reopened:
        assert reopened.count() == 60
        for strategy, ids in expected.items():
            assert [h.id for h in reopened.search(QUERIES[1], k=10, strategy=strategy)] == ids
        reopened.index(scifact_docs[60:])  # later documents use the stored avgdl and int8 ranges
        assert reopened.store.schema.encoders[EmbeddingKind.SPARSE] == state
        assert reopened.count() == len(scifact_docs)


@pytest.mark.colbert
def test_colbert_maxsim_and_dense_first_stage(scifact_docs, dense_embedder, colbert_embedder):
    r = Retriever(
        "memory", ["colbert", "colbert+dense"], embedder=dense_embedder, multivector_embedder=colbert_embedder
    )
    r.index(scifact_docs[:40])
    for doc in scifact_docs[:5]:
        assert r.search(doc.metadata["title"], k=1, strategy="colbert")[0].id == doc.id
        assert r.search(doc.metadata["title"], k=1, strategy="colbert+dense")[0].id == doc.id
    full = [h.id for h in r.search(QUERIES[0], k=5, strategy="colbert")]
    funnel = [h.id for h in r.search(QUERIES[0], k=5, strategy="colbert+dense")]
    assert len(set(full) & set(funnel)) >= 3


@pytest.mark.parametrize(
    ("indexed", "searched", "says"),
    [
        ({"document_prompt": "passage: "}, {}, "document_prompt='passage: '"),
        ({"query_prompt": "query: "}, {}, "query_prompt='query: '"),
        ({"normalize": False}, {}, "normalize=False"),
        ({"max_seq_length": 64}, {}, "max_seq_length=64"),
        ({}, {"document_prompt": "passage: "}, "document_prompt=None"),
    ],
)
def test_a_collection_refuses_a_dense_embedder_that_encodes_otherwise(scifact_docs, indexed, searched, says):
    """Prompts, normalisation and the window change the vectors: they are in the collection's
    record as in the cache key, so an embedder without them is refused, not silently used."""
    store = MemoryStore()
    Retriever(store, "dense", embedder=DenseEmbedder(**indexed, cache=False)).index(scifact_docs[:5])
    with pytest.raises(EncoderMismatchError, match=re.escape(f"DenseEmbedder({says})")):
        Retriever(store, "dense", embedder=DenseEmbedder(**searched, cache=False))
    assert store.count() == 5  # nothing lost
    rebuilt = DenseEmbedder.from_state(store.schema.encoders[EmbeddingKind.DENSE], cache=False)
    assert Retriever(store, "dense", embedder=rebuilt).search(scifact_docs[2].text, k=1)[0].id == scifact_docs[2].id


def test_a_collection_recorded_before_prompts_were_recorded_still_opens(tmp_path, scifact_docs, dense_embedder):
    """Records without the newer settings read as before: unknown, so not checked."""
    with Retriever(f"memory:{tmp_path}", "dense", embedder=dense_embedder) as first:
        first.index(scifact_docs[:5])
    (saved,) = tmp_path.glob("default/data-*/schema.json")
    manifest = json.loads(saved.read_text())
    dense = manifest["schema"]["encoders"]["dense"]
    manifest["schema"]["encoders"]["dense"] = {"model": dense["model"]}  # what ragembed recorded before
    saved.write_text(json.dumps(manifest))
    prompted = DenseEmbedder(document_prompt="passage: ", cache=False)
    with Retriever(f"memory:{tmp_path}", "dense", embedder=prompted) as reopened:
        assert reopened.search(scifact_docs[1].text, k=1)[0].id == scifact_docs[1].id
