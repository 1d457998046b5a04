"""ONNX Runtime and OpenVINO backends with the real bundled model: the exported graph gives the
torch vectors, int8 is close but kept apart (cache key, collection state), and a collection
indexed with one backend refuses queries encoded by another."""

from __future__ import annotations

import numpy as np
import pytest

from ragembed import DenseEmbedder, EmbeddingCache, EmbeddingKind, MemoryStore, Retriever
from ragembed.errors import InvalidInputError

pytest.importorskip("onnxruntime", reason="the backends need the ragembed[fast] extra")


@pytest.fixture(scope="module")
def texts(scifact_docs):
    return [d.text for d in scifact_docs[:24]]


@pytest.fixture(scope="module")
def onnx_int8():
    return DenseEmbedder(backend="onnx", quantize="int8", cache=False)


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_fp32_backends_reproduce_the_torch_vectors(dense_embedder, texts, backend):
    pytest.importorskip(backend if backend == "openvino" else "onnxruntime")
    other = DenseEmbedder(backend=backend, cache=False)
    for role in ("document", "query"):
        got, want = other.embed(texts, role).data, DenseEmbedder(cache=False).embed(texts, role).data
        assert np.abs(got - want).max() < 1e-5, role
    assert other.identity != dense_embedder.identity


def test_int8_is_close_to_fp32_but_not_equal(texts, onnx_int8):
    got, want = onnx_int8.embed_documents(texts).data, DenseEmbedder(cache=False).embed_documents(texts).data
    cosines = (got * want).sum(axis=1)
    assert cosines.min() > 0.97 and np.abs(got - want).max() > 1e-4
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_int8_vectors_never_come_from_the_fp32_cache(tmp_path, texts):
    cache = EmbeddingCache(tmp_path)
    fp32 = DenseEmbedder(cache=cache).embed_documents(texts).data
    int8 = DenseEmbedder(backend="onnx", quantize="int8", cache=cache).embed_documents(texts).data
    assert np.abs(int8 - fp32).max() > 1e-4  # encoded by the int8 model, not served from fp32's rows
    again = DenseEmbedder(backend="onnx", quantize="int8", cache=cache).embed_documents(texts).data
    assert np.array_equal(again, int8)


def test_a_collection_indexed_in_int8_refuses_fp32_queries(scifact_docs, onnx_int8):
    store = MemoryStore()
    Retriever(store, "dense", embedder=onnx_int8).index(scifact_docs[:30])
    recorded = store.schema.encoders[EmbeddingKind.DENSE]
    assert recorded["backend"] == "onnx" and recorded["quantize"] == "int8"
    hits = Retriever(store, "dense", embedder=onnx_int8).search("cancer cells", k=3)
    assert len(hits) == 3
    with pytest.raises(InvalidInputError, match="quantize='int8'"):
        Retriever(store, "dense", embedder=DenseEmbedder(cache=False)).search("cancer cells", k=3)
    assert store.count() == 30  # nothing lost


@pytest.mark.colbert
def test_colbert_runs_on_onnx_runtime_with_the_torch_vectors(colbert_embedder, texts):
    from ragembed import ColBERTEmbedder

    other = ColBERTEmbedder(backend="onnx", cache=False)
    for role in ("document", "query"):
        got = other.embed(texts[:8], role).vectors
        want = ColBERTEmbedder(cache=False).embed(texts[:8], role).vectors
        assert [g.shape for g in got] == [w.shape for w in want]
        assert max(np.abs(g - w).max() for g, w in zip(got, want)) < 1e-5, role
    assert other.identity != colbert_embedder.identity
