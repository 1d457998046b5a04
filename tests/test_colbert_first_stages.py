"""ColBERT's two-stage strategies with the real model on real SciFact text, on every backend that
serves them: a first stage (the dense model's vector, or a MUVERA encoding of the ColBERT tokens)
finds candidates, MaxSim over the tokens reranks them. Each is held to a floor of exact MaxSim's
top 10 (the memory store's `colbert` over every document)."""

from __future__ import annotations

import pytest
from contract.backends import BACKENDS

from ragembed import MemoryStore, Retriever
from ragembed.errors import InvalidInputError, UnsupportedStrategyError

# Kept of exact MaxSim's top 10 over 120 abstracts and 20 queries (their first sentences and
# SciFact-like questions) on the memory store when these floors were set: 0.995 (MUVERA's default
# shape, 100 candidates: most of the corpus), and with 30 candidates 0.79 (dense), 0.73 (MUVERA's
# default shape, 10,240 dimensions), 0.535 (k4p8r10, 1,280). Floors sit 0.05 under.
FLOORS = {
    "colbert+muvera": 0.945,
    "colbert+dense:30": 0.74,
    "colbert+muvera:30": 0.68,
    "colbert+muvera:k4p8r10:30": 0.485,
}
QUESTIONS = [
    "vitamin D and bone health",
    "tumour growth in mice",
    "insulin resistance in obesity",
    "antibiotic resistance of bacteria",
    "DNA repair mechanisms",
    "stem cell differentiation",
    "immune response to infection",
    "risk factors for heart disease",
    "gene expression in cancer cells",
    "effects of smoking during pregnancy",
]
SERVED_BY = ["memory", "qdrant-edge", "qdrant-local-path", "qdrant-server", "qdrant-server-grpc", "weaviate-server"]


def backend(name: str):
    b = BACKENDS[name]
    marks = [pytest.mark.skip(reason=b.skip_reason)] if b.skip_reason else []
    return pytest.param(name, marks=[*marks, *([pytest.mark.server] if b.on_shared_server else [])])


@pytest.fixture(scope="module")
def queries(scifact_docs):
    return [d.text.split(".")[0] for d in scifact_docs[::12]] + QUESTIONS


@pytest.fixture(scope="module")
def exact_top10(scifact_docs, colbert_embedder, queries):
    exact = Retriever(MemoryStore(), "colbert", multivector_embedder=colbert_embedder)
    exact.index(scifact_docs)
    return [{h.id for h in exact.search(q, k=10)} for q in queries]


@pytest.mark.colbert
@pytest.mark.parametrize("name", [backend(n) for n in SERVED_BY])
def test_two_stage_colbert_keeps_exact_maxsims_top10(
    name, tmp_path, scifact_docs, dense_embedder, colbert_embedder, queries, exact_top10
):
    b = BACKENDS[name]
    store = b.create(tmp_path)
    r = Retriever(store, list(FLOORS), embedder=dense_embedder, multivector_embedder=colbert_embedder)
    try:
        r.index(scifact_docs)
        for strategy, floor in FLOORS.items():
            found = [{h.id for h in r.search(q, k=10, strategy=strategy)} for q in queries]
            kept = sum(len(f & t) for f, t in zip(found, exact_top10)) / (10 * len(queries))
            assert kept >= floor, (name, strategy, kept)
        for doc in scifact_docs[:5]:  # each finds the document whose title it is asked
            assert r.search(doc.metadata["title"], k=1, strategy="colbert+muvera")[0].id == doc.id
    finally:
        if b.on_shared_server:
            store.drop()
        r.close()


@pytest.mark.colbert
def test_a_muvera_collection_needs_no_dense_model_and_is_reopened_with_its_shape(
    tmp_path, scifact_docs, colbert_embedder
):
    """colbert+muvera stores no dense vectors and records no dense encoder; a later session
    searching it with another MUVERA shape, or with colbert+dense, is told what the collection
    holds, and the documents stay."""
    from ragembed.stores.qdrant import QdrantEdgeStore

    r = Retriever(QdrantEdgeStore(tmp_path), "colbert+muvera:k4p8r10:turbo4", multivector_embedder=colbert_embedder)
    r.index(scifact_docs[:30])
    schema = r.store.schema
    assert schema.names == ["muvera_k4p8r10", "colbert_turbo4"] and set(schema.encoders) == {"multivector"}
    assert schema["muvera_k4p8r10"].dim == 10 * 16 * 8
    r.close()
    again = Retriever(QdrantEdgeStore(tmp_path), "colbert+muvera:k4p8r10:turbo4", multivector_embedder=colbert_embedder)
    hit = again.search(scifact_docs[3].metadata["title"], k=1)[0]
    assert hit.id == scifact_docs[3].id
    with pytest.raises(UnsupportedStrategyError, match=r"needs the vector fields \['muvera_k5p16r20'"):
        again.search("a question", strategy="colbert+muvera:turbo4")
    with pytest.raises(UnsupportedStrategyError, match=r"needs the vector fields \['dense'"):
        again.search("a question", strategy="colbert+dense:turbo4")
    with pytest.raises(InvalidInputError, match="'colbert\\+muvera:k4p8r10:0'.*candidates must be a positive"):
        again.search("a question", strategy="colbert+muvera:k4p8r10:0")
    assert again.count() == 30
    again.close()
