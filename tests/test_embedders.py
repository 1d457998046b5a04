"""Embedders with real models: dense, Matryoshka, quantized, BM25 (against bm25s), ColBERT, cache."""

from __future__ import annotations

import numpy as np
import pytest

from ragembed import (
    DenseEmbedder,
    DenseEmbeddings,
    EmbeddingCache,
    Int8Calibration,
    MatryoshkaEmbedder,
    Precision,
    Retriever,
    quantize_binary,
    quantize_int8,
    truncate,
)
from ragembed.errors import InvalidInputError, ModelLoadError
from ragembed.quantization import dequantize_int8


def test_dense_embeddings_are_unit_float32(dense_embedder, scifact_docs):
    emb = dense_embedder.embed_documents([d.text for d in scifact_docs[:5]])
    assert emb.data.dtype == np.float32 and emb.shape == (5, 384)
    np.testing.assert_allclose(np.linalg.norm(emb.data, axis=1), 1.0, atol=1e-5)


def test_model_loads_by_local_path(dense_embedder):
    from ragembed.embedders.models import default_model_path

    by_path = DenseEmbedder(default_model_path(), cache=False)
    a = by_path.embed_queries(["a query about cells"]).data
    b = dense_embedder.embed_queries(["a query about cells"]).data
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no model directory"):
        DenseEmbedder(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelLoadError, match="cannot load model"):
        DenseEmbedder("no-such-org/no-such-model-xyz")


def test_matryoshka_truncates_and_renormalises(dense_embedder):
    texts = ["protein folding", "gene expression in yeast"]
    full = dense_embedder.embed_documents(texts)
    small = MatryoshkaEmbedder(dense_embedder, dim=64).embed_documents(texts)
    assert small.shape == (2, 64)
    expected = full.data[:, :64] / np.linalg.norm(full.data[:, :64], axis=1, keepdims=True)
    np.testing.assert_allclose(small.data, expected, atol=1e-6)
    several = MatryoshkaEmbedder(dense_embedder, dim=64).embed_documents_at(texts, [32, 128])
    assert {d: e.dim for d, e in several.items()} == {32: 32, 128: 128}
    with pytest.raises(InvalidInputError, match="not in 1..384"):
        MatryoshkaEmbedder(dense_embedder, dim=500)
    with pytest.raises(InvalidInputError):
        truncate(full, 0)


def test_int8_quantization_is_close_and_clips_outliers(dense_embedder, scifact_docs):
    emb = dense_embedder.embed_documents([d.text for d in scifact_docs[:60]])
    calibration = Int8Calibration.fit(emb)
    codes = quantize_int8(emb, calibration)
    assert codes.precision is Precision.INT8 and codes.data.dtype == np.int8
    error = np.abs(dequantize_int8(codes.data, calibration) - emb.data).max()
    assert error <= (calibration.step.max() / 2) + 1e-6
    outlier = DenseEmbeddings(np.full((1, 384), 5.0, np.float32))
    assert quantize_int8(outlier, calibration).data.max() == 127
    restored = Int8Calibration.from_dict(calibration.to_dict())
    np.testing.assert_array_equal(quantize_int8(emb, restored).data, codes.data)


def test_binary_quantization_packs_sign_bits():
    emb = DenseEmbeddings(np.array([[0.5, -1, 2, -0.1, 0, 3, -2, 1]], np.float32))
    bits = quantize_binary(emb)
    assert bits.precision is Precision.BINARY and bits.dim == 8
    assert bits.data.tolist() == [[0b10100101]]


def test_bm25_retrieval_matches_bm25s_scores(bm25_embedder, scifact_docs):
    import bm25s
    import Stemmer

    texts = [d.text for d in scifact_docs]
    reference = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    stemmer = Stemmer.Stemmer("english")
    reference.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    retriever = Retriever("memory", "bm25", sparse_embedder=bm25_embedder)
    retriever.index(scifact_docs)
    for query in ["vitamin D deficiency and bone density", "cancer cells tumour growth", "insulin resistance"]:
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, show_progress=False)
        docs, scores = reference.retrieve(tokens, k=10, show_progress=False)
        hits = retriever.search(query, k=10)
        matching = scores[0] > 0  # bm25s pads with zero-score documents; stores return matches only
        assert len(hits) == matching.sum() > 0
        np.testing.assert_allclose([h.score for h in hits], scores[0][matching], rtol=1e-5)
        assert [h.id for h in hits] == [scifact_docs[i].id for i in docs[0][matching]]


def test_bm25_needs_fitting_before_documents():
    from ragembed import BM25Embedder

    with pytest.raises(InvalidInputError, match="not fitted"):
        BM25Embedder().embed_documents(["some text"])
    assert BM25Embedder().embed_queries(["the of and"]).indices[0].size == 0  # stop words only


def test_cache_serves_the_second_encoding(tmp_path, scifact_docs):
    calls = []

    class CountingEmbedder(DenseEmbedder):
        def _encode(self, texts, role):
            calls.append(len(texts))
            return super()._encode(texts, role)

    texts = [d.text for d in scifact_docs[:20]]
    first = CountingEmbedder(cache=tmp_path).embed_documents(texts)
    second = CountingEmbedder(cache=EmbeddingCache(tmp_path)).embed_documents(texts + texts[:3])
    assert calls == [20]  # nothing re-encoded, duplicates included
    np.testing.assert_array_equal(first.data, second.data[:20])
    CountingEmbedder(cache=tmp_path).embed_queries(texts[:2])  # queries are cached apart
    assert calls == [20, 2]


@pytest.mark.colbert
def test_colbert_token_vectors_and_pooling(colbert_embedder):
    from ragembed import ColBERTEmbedder

    text = "Mitochondria produce most of the chemical energy needed to power the cell's biochemical reactions."
    docs = colbert_embedder.embed_documents([text])
    assert docs.dim == 128 and docs.vectors[0].shape[0] > 10
    np.testing.assert_allclose(np.linalg.norm(docs.vectors[0], axis=1), 1.0, atol=1e-4)
    query = colbert_embedder.embed_queries(["what powers the cell?"])
    assert query.vectors[0].shape[0] == 32  # PyLate pads queries with [MASK] expansion tokens
    pooler = ColBERTEmbedder(pool_factor=2, cache=False)
    pooled = pooler.embed_documents([text])
    assert pooled.vectors[0].shape[0] < docs.vectors[0].shape[0]
    # Pooling after the cache gives what PyLate's own pooled encoding gives
    (reference,) = pooler.model.encode([text], is_query=False, pool_factor=2, show_progress_bar=False)
    np.testing.assert_allclose(pooled.vectors[0], np.asarray(reference), atol=1e-5)
    assert pooler.embed_queries(["what powers the cell?"]).vectors[0].shape[0] == 32  # queries unpooled
    again = ColBERTEmbedder(cache=False).embed_documents([text])  # seeded head: reproducible
    np.testing.assert_allclose(again.vectors[0], docs.vectors[0], atol=1e-5)


@pytest.mark.colbert
def test_dropping_stop_words_leaves_out_their_document_tokens_only(colbert_embedder):
    from ragembed import ColBERTEmbedder

    text = "The mitochondria are the powerhouse of the cell, and they make ATP."
    whole = colbert_embedder.embed_documents([text]).vectors[0]
    dropper = ColBERTEmbedder(drop_stop_words=True, cache=False)
    fewer = dropper.embed_documents([text]).vectors[0]
    # the, are, the, of, the, and, they: seven tokens fewer (punctuation is left out either way)
    assert fewer.shape[0] == whole.shape[0] - 7
    # the rest are the same vectors (the words still shape them through attention): only left out
    assert np.abs(fewer @ whole.T).max(axis=1) == pytest.approx(1.0, abs=1e-4)
    query = "what are the powerhouses of the cell?"
    np.testing.assert_allclose(
        dropper.embed_queries([query]).vectors[0], colbert_embedder.embed_queries([query]).vectors[0], atol=1e-5
    )
    assert dropper.identity != colbert_embedder.identity  # cached apart from the whole tokens
    assert dropper.encoder_state()["drop_stop_words"] is True


@pytest.mark.colbert
def test_a_collection_without_stop_words_refuses_an_embedder_that_keeps_them(colbert_embedder):
    from ragembed import ColBERTEmbedder, Document, MemoryStore, Retriever

    store = MemoryStore()
    docs = [Document("a", "Mitochondria produce energy for the cell."), Document("b", "Ribosomes make proteins.")]
    dropper = ColBERTEmbedder(drop_stop_words=True)
    Retriever(store, "colbert", multivector_embedder=dropper).index(docs)
    with pytest.raises(InvalidInputError, match="drop_stop_words=True.*ColBERTEmbedder\\(drop_stop_words=True\\)"):
        Retriever(store, "colbert", multivector_embedder=colbert_embedder)
    assert store.count() == 2  # nothing lost
    assert Retriever(store, "colbert", multivector_embedder=dropper).search("energy", k=1)[0].id == "a"


@pytest.mark.colbert
def test_a_pooled_collection_refuses_an_embedder_with_another_pool_factor(colbert_embedder):
    from ragembed import ColBERTEmbedder, Document, MemoryStore, Retriever

    store = MemoryStore()
    docs = [Document("a", "Mitochondria produce energy for the cell."), Document("b", "Ribosomes make proteins.")]
    Retriever(store, "colbert", multivector_embedder=ColBERTEmbedder(pool_factor=2)).index(docs)
    with pytest.raises(InvalidInputError, match="indexed with pool_factor=2.*ColBERTEmbedder\\(pool_factor=2\\)"):
        Retriever(store, "colbert", multivector_embedder=colbert_embedder)
    assert store.count() == 2  # nothing lost
    hits = Retriever(store, "colbert", multivector_embedder=ColBERTEmbedder(pool_factor=2)).search("energy", k=1)
    assert hits[0].id == "a"


def test_a_model_without_a_window_embeds_and_reports_no_truncation():
    """sentence-transformers sets no max_seq_length for models without a position limit."""
    from ragembed import DenseEmbedder

    embedder = DenseEmbedder(cache=False)
    embedder.model.max_seq_length = None
    assert embedder.truncation(["a short text"]) is None
    assert "max_seq_length" in embedder.identity
    assert embedder.encoder_state()["max_seq_length"] is None
