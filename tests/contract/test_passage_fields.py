"""The contract for per-passage fields, on every store: a document scores by its best passage
(MaxSim of the query's one vector over its passage vectors; BM25 of each passage, IDF counted over
passages), whatever the store keeps (one multi-vector a document, or a point a passage grouped at
search), exactly, with ties by document id, under filters, fused with BM25, at depth. Expected
rankings come from plain numpy."""

from __future__ import annotations

import numpy as np
import pytest

from ragembed import (
    Document,
    Fusion,
    MultiVectorEmbeddings,
    Schema,
    SparseEmbeddings,
    SparsePassageEmbeddings,
    VectorField,
    VectorSearch,
)
from ragembed.passages import Chunking
from ragembed.types import EmbeddingKind, PassageMap

from .backends import backend_params, written_store

N, DIM = 120, 16
RNG = np.random.default_rng(11)


def unit(m: np.ndarray) -> np.ndarray:
    return (m / np.linalg.norm(m, axis=-1, keepdims=True)).astype(np.float32)


PASSAGES = [unit(RNG.normal(size=(int(RNG.integers(1, 9)), DIM))) for _ in range(N)]
PASSAGES[5] = PASSAGES[4].copy()  # an exact tie: doc-004 must rank before doc-005
VOCAB = np.sort(RNG.choice(2**32 - 1, size=200, replace=False)).astype(np.uint32)
SPARSE = [np.sort(RNG.choice(VOCAB, size=int(RNG.integers(3, 12)), replace=False)) for _ in range(N)]
# BM25 over passages: each passage's terms (weights: term frequency saturation, 0.3-1.0)
PASSAGE_TERMS = [
    [np.sort(RNG.choice(VOCAB[:60], size=int(RNG.integers(1, 6)), replace=False)) for _ in range(len(p))]
    for p in PASSAGES
]
PASSAGE_WEIGHTS = [[RNG.uniform(0.3, 1.0, size=len(t)).astype(np.float32) for t in doc] for doc in PASSAGE_TERMS]
DOCS = [Document(f"doc-{i:03d}", "x" * (10 * len(PASSAGES[i])), {"group": i % 3}) for i in range(N)]
MAPS = [PassageMap.of(np.array([[10 * j, 10 * j + 10] for j in range(len(p))]), p) for p in PASSAGES]
SMALL = 8  # a funnel's first stage: the passages' first dimensions, as Matryoshka's
PASSAGES_SMALL = [unit(p[:, :SMALL]) for p in PASSAGES]
FIELDS = (
    VectorField("dense", EmbeddingKind.MULTIVECTOR, DIM, distance="dot", embedder="dense", per_passage=True),
    VectorField("dense_small", EmbeddingKind.MULTIVECTOR, SMALL, distance="dot", embedder="dense", per_passage=True),
    VectorField("bm25", EmbeddingKind.SPARSE, 0, distance="dot", idf=True),
    VectorField("bm25_passages", EmbeddingKind.SPARSE, 0, distance="dot", idf=True, per_passage=True),
)
ENCODERS = {
    EmbeddingKind.DENSE: {"model": "contract-model", "backend": "torch", "quantize": None},
    EmbeddingKind.SPARSE: {"avgdl": 3.25, "k1": 1.2, "b": 0.75, "language": "english", "stopwords": ["a"]},
}


def schema_for(store) -> Schema:
    """The fields less the kinds the store does not hold (Weaviate: sparse; Qdrant local mode:
    sparse over passages)."""
    kinds = store.capabilities.kinds
    held = [f for f in FIELDS if f.kind in kinds and (store.capabilities.sparse_passages or f.name != "bm25_passages")]
    return Schema(tuple(held), {k: s for k, s in ENCODERS.items() if k in kinds}, Chunking(16).record())


def vectors_for(store) -> dict:
    vectors = {
        "dense": MultiVectorEmbeddings(tuple(PASSAGES)),
        "dense_small": MultiVectorEmbeddings(tuple(PASSAGES_SMALL)),
        "bm25": SparseEmbeddings(tuple(SPARSE), tuple(np.ones(len(t), np.float32) for t in SPARSE)),
        "bm25_passages": SparsePassageEmbeddings(
            tuple(SparseEmbeddings(tuple(t), tuple(w)) for t, w in zip(PASSAGE_TERMS, PASSAGE_WEIGHTS))
        ),
    }
    return {name: vectors[name] for name in schema_for(store).names}


@pytest.fixture(params=backend_params())
def store(request, tmp_path):
    yield from written_store(request.param, tmp_path, schema_for, DOCS, vectors_for, MAPS)


def best_passage_scores(q: np.ndarray, rows=range(N)) -> dict[int, float]:
    return {r: float((PASSAGES[r] @ q).max()) for r in rows}


def ranked(scores: dict[int, float], limit: int) -> list[str]:
    return [DOCS[r].id for r in sorted(scores, key=lambda r: (-scores[r], DOCS[r].id))[:limit]]


def passage_query(q: np.ndarray, limit: int) -> VectorSearch:
    return VectorSearch("dense", MultiVectorEmbeddings((q[None, :],)), limit)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("limit", [10, 60])
def test_a_document_scores_by_its_best_passage(store, seed, limit):
    q = unit(np.random.default_rng(seed).normal(size=DIM))
    hits = store.search(passage_query(q, limit))
    expected = best_passage_scores(q)
    assert [h.id for h in hits] == ranked(expected, limit)
    assert [h.score for h in hits] == pytest.approx([expected[int(h.id[4:])] for h in hits], abs=1e-5)
    first = hits[0]
    assert first.text == DOCS[int(first.id[4:])].text and first.metadata == {"group": int(first.id[4:]) % 3}
    assert first.passage_map is not None and first.passage_map.encoded == MAPS[int(first.id[4:])].encoded


def test_ties_between_documents_break_by_id(store):
    q = PASSAGES[4][0]  # doc-004 and doc-005 hold the same passages: both score 1
    assert [h.id for h in store.search(passage_query(q, 2))] == ["doc-004", "doc-005"]


def test_a_filter_selects_documents_by_their_metadata(store):
    q = unit(np.random.default_rng(5).normal(size=DIM))
    hits = store.search(passage_query(q, 10), {"group": 1})
    assert [h.id for h in hits] == ranked(best_passage_scores(q, range(1, N, 3)), 10)


@pytest.mark.parametrize("seed", range(3))
def test_a_funnel_rescores_exactly_its_first_stages_documents(store, seed):
    """The first stage's top 15 documents (by their best small passage), and only those, ranked
    by their best full passage: not the documents of the first stage's best passages."""
    q = unit(np.random.default_rng(seed).normal(size=DIM))
    small = unit(q[:SMALL])
    first = VectorSearch("dense_small", MultiVectorEmbeddings((small[None, :],)), 15)
    hits = store.search(VectorSearch("dense", MultiVectorEmbeddings((q[None, :],)), 10, (first,)))
    by_small = {r: float((PASSAGES_SMALL[r] @ small).max()) for r in range(N)}
    candidates = [int(d[4:]) for d in ranked(by_small, 15)]
    assert [h.id for h in hits] == ranked(best_passage_scores(q, candidates), 10)


TERMS = VOCAB[[3, 50, 100, 150]]


def bm25_scores() -> dict[int, float]:
    """BM25 of TERMS (weights 1), IDF counted over the documents, never over passages."""
    df = {t: sum(t in set(s.tolist()) for s in SPARSE) for t in TERMS.tolist()}
    idf = {t: np.log(1 + (N - d + 0.5) / (d + 0.5)) for t, d in df.items()}
    scores = {r: sum(idf[t] for t in TERMS.tolist() if t in set(SPARSE[r].tolist())) for r in range(N)}
    return {r: s for r, s in scores.items() if s > 0}


def bm25_query(limit: int) -> VectorSearch:
    return VectorSearch("bm25", SparseEmbeddings((TERMS,), (np.ones(len(TERMS), np.float32),)), limit)


def test_bm25_counts_documents_not_passages(store):
    if EmbeddingKind.SPARSE not in store.capabilities.kinds:
        pytest.skip("no sparse vectors on this store")
    hits, expected = store.search(bm25_query(10)), bm25_scores()
    assert [h.id for h in hits] == ranked(expected, 10)
    assert [h.score for h in hits] == pytest.approx([expected[int(h.id[4:])] for h in hits], rel=1e-5)


def test_hybrid_fuses_bm25_over_documents_with_their_best_passages(store):
    if EmbeddingKind.SPARSE not in store.capabilities.kinds:
        pytest.skip("no sparse vectors on this store")
    q = unit(np.random.default_rng(6).normal(size=DIM))
    plan = Fusion((bm25_query(20), passage_query(q, 20)), limit=10)
    bm25 = bm25_scores()
    fused: dict[int, float] = {}
    for ranking in (ranked(bm25, 20), ranked(best_passage_scores(q), 20)):
        for rank, doc_id in enumerate(ranking, start=1):
            fused[int(doc_id[4:])] = fused.get(int(doc_id[4:]), 0) + 1 / (60 + rank)
    hits = store.search(plan)
    assert [h.id for h in hits] == ranked(fused, 10)
    assert hits[0].score == pytest.approx(fused[int(hits[0].id[4:])])


def passage_bm25_scores(terms: np.ndarray, rows=range(N)) -> dict[int, float]:
    """Each document's best passage's BM25 of `terms` (query weights 1), N and df counted over
    every passage of the collection; documents with no passage holding a term left out."""
    passages = [
        (r, dict(zip(t.tolist(), w.tolist()))) for r in range(N) for t, w in zip(PASSAGE_TERMS[r], PASSAGE_WEIGHTS[r])
    ]
    df = {t: sum(t in held for _, held in passages) for t in terms.tolist()}
    idf = {t: np.log(1 + (len(passages) - d + 0.5) / (d + 0.5)) for t, d in df.items()}
    best: dict[int, float] = {}
    for r, held in passages:
        if r in rows and any(t in held for t in idf):
            score = sum(idf[t] * held[t] for t in idf if t in held)
            best[r] = max(best.get(r, -np.inf), score)
    return best


def passage_bm25_query(terms: np.ndarray, limit: int) -> VectorSearch:
    return VectorSearch("bm25_passages", SparseEmbeddings((terms,), (np.ones(len(terms), np.float32),)), limit)


def needs_sparse_passages(store) -> None:
    if "bm25_passages" not in schema_for(store):
        pytest.skip("no sparse vectors over passages on this store (it refuses them: test_passages.py)")


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("limit", [10, 60])
def test_bm25_over_passages_scores_a_document_by_its_best_passage(store, seed, limit):
    needs_sparse_passages(store)
    terms = np.sort(np.random.default_rng(seed).choice(VOCAB[:60], size=3, replace=False))
    hits, expected = store.search(passage_bm25_query(terms, limit)), passage_bm25_scores(terms)
    assert [h.id for h in hits] == ranked(expected, limit)
    assert [h.score for h in hits] == pytest.approx([expected[int(h.id[4:])] for h in hits], rel=1e-5)
    assert hits[0].passage_map is not None and hits[0].passage_map.encoded == MAPS[int(hits[0].id[4:])].encoded


def test_bm25_over_passages_under_a_filter_and_fused_with_passage_vectors(store):
    needs_sparse_passages(store)
    terms = VOCAB[[2, 9, 17]]
    hits = store.search(passage_bm25_query(terms, 10), {"group": 2})
    assert [h.id for h in hits] == ranked(passage_bm25_scores(terms, range(2, N, 3)), 10)
    q = unit(np.random.default_rng(8).normal(size=DIM))
    fused: dict[int, float] = {}
    for ranking in (ranked(passage_bm25_scores(terms), 20), ranked(best_passage_scores(q), 20)):
        for rank, doc_id in enumerate(ranking, start=1):
            fused[int(doc_id[4:])] = fused.get(int(doc_id[4:]), 0) + 1 / (60 + rank)
    hits = store.search(Fusion((passage_bm25_query(terms, 20), passage_query(q, 20)), limit=10))
    assert [h.id for h in hits] == ranked(fused, 10)
