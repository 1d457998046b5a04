"""Bad input: each case raises a ragembed exception that says what was wrong and how to fix it,
and nothing stored before is lost."""

from __future__ import annotations

import pytest

from ragembed import (
    DenseEmbedder,
    Document,
    EmbeddingKind,
    MatryoshkaEmbedder,
    MemoryStore,
    Quantized,
    Retriever,
    VectorField,
    parse_strategy,
)
from ragembed.errors import (
    DimensionMismatchError,
    InvalidInputError,
    ModelLoadError,
    RagembedError,
    SchemaMismatchError,
    UnsupportedStrategyError,
)
from ragembed.search.capabilities import Capabilities


@pytest.fixture()
def filled(scifact_docs, dense_embedder, bm25_embedder):
    """A retriever over 20 indexed documents, and a snapshot to prove nothing was lost."""
    r = Retriever(MemoryStore(), ["dense", "bm25"], embedder=dense_embedder, sparse_embedder=bm25_embedder)
    r.index(scifact_docs[:20])
    snapshot = [h.id for h in r.search("cell biology", k=20)]
    yield r
    assert r.count() == 20
    assert [h.id for h in r.search("cell biology", k=20)] == snapshot


def test_empty_list(filled, dense_embedder):
    with pytest.raises(InvalidInputError, match="empty; give at least one"):
        filled.index([])
    with pytest.raises(InvalidInputError, match="empty"):
        dense_embedder.embed_documents([])
    with pytest.raises(InvalidInputError, match="empty"):
        filled.search_many([])


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_or_whitespace_text(filled, dense_embedder, text):
    with pytest.raises(InvalidInputError, match="empty or whitespace"):
        filled.index([Document("new", text)])
    with pytest.raises(InvalidInputError, match=r"texts\[1\] is empty or whitespace"):
        dense_embedder.embed_documents(["fine", text])
    with pytest.raises(InvalidInputError, match="empty or whitespace"):
        filled.search(text)


@pytest.mark.parametrize("value", [5, 3.2, b"bytes", ["list"]])
def test_non_string_text(filled, dense_embedder, value):
    with pytest.raises(InvalidInputError, match="not a string"):
        dense_embedder.embed_documents(["fine", value])
    with pytest.raises(InvalidInputError, match="not a string"):
        Document("new", value)
    with pytest.raises(InvalidInputError, match="must be a string"):
        filled.search(value)
    with pytest.raises(InvalidInputError, match="not ragembed.Document"):
        filled.index([value])


def test_none(filled, dense_embedder):
    with pytest.raises(InvalidInputError, match="None"):
        dense_embedder.embed_documents(None)
    with pytest.raises(InvalidInputError, match="None"):
        filled.index(None)
    with pytest.raises(InvalidInputError, match="NoneType"):
        Document("new", None)
    with pytest.raises(InvalidInputError, match="id must be a non-empty string"):
        Document(None, "text")
    with pytest.raises(InvalidInputError):
        filled.search(None)


def test_a_single_string_instead_of_a_list(dense_embedder):
    with pytest.raises(InvalidInputError, match="wrap it"):
        dense_embedder.embed_documents("one text")


def test_duplicate_ids_in_one_batch(filled):
    with pytest.raises(InvalidInputError, match="duplicate document id 'x' at positions 0 and 2"):
        filled.index([Document("x", "a"), Document("y", "b"), Document("x", "c")])


def test_vector_dimension_that_does_not_match_the_collection(filled, dense_embedder):
    small = MatryoshkaEmbedder(dense_embedder, dim=64)
    other = Retriever(filled.store, "dense", embedder=small, sparse_embedder=filled.embedder(EmbeddingKind.SPARSE))
    with pytest.raises(SchemaMismatchError, match="'dense'.*delete this collection"):
        other.index([Document("new", "a new abstract")])
    with pytest.raises(DimensionMismatchError, match="384-dimensional vectors, got 64"):
        other.search("cell biology")


def test_another_model_is_refused_for_an_indexed_collection(filled, tmp_path):
    """Models are compared, not their names: the bundled model by its folder (or a copy of that
    folder) is the same model; a model with other weights is not."""
    import shutil

    from ragembed.embedders.models import default_model_path

    Retriever(filled.store, "dense", embedder=DenseEmbedder(default_model_path(), cache=False))
    copy = shutil.copytree(default_model_path(), tmp_path / "copy")
    Retriever(filled.store, "dense", embedder=DenseEmbedder(str(copy), cache=False))
    other = DenseEmbedder(str(copy), cache=False)
    weights = next(iter(other.model.parameters()))
    weights.data[0, 0] += 1.0  # another model: one weight differs
    other.model.save(str(tmp_path / "other"))
    with pytest.raises(InvalidInputError, match="indexed with model 'bundled:all-MiniLM-L6-v2'"):
        Retriever(filled.store, "dense", embedder=DenseEmbedder(str(tmp_path / "other"), cache=False))


@pytest.mark.parametrize("k", [0, -1, 2.5, "10", True])
def test_k_must_be_positive(filled, k):
    with pytest.raises(InvalidInputError, match="k must be a positive whole number"):
        filled.search("cell biology", k=k)


def test_strategy_the_collection_cannot_serve(filled):
    with pytest.raises(UnsupportedStrategyError, match="index the documents with this strategy first"):
        filled.search("cell biology", strategy="binary")
    with pytest.raises(UnsupportedStrategyError, match="unknown strategy 'quantum'"):
        filled.search("cell biology", strategy="quantum")


@pytest.mark.parametrize("spec", ["binary:fast", "binary:norescore:hamming", "int8:hamming", "binary:hamming:"])
def test_unknown_binary_variants_are_refused(spec):
    with pytest.raises(UnsupportedStrategyError, match="binary\\[:hamming\\]"):
        parse_strategy(spec)


def test_asymmetric_is_for_binary_only():
    with pytest.raises(InvalidInputError, match="binary quantization only"):
        Quantized("int8", asymmetric=True)
    with pytest.raises(InvalidInputError, match="only binary fields can be asymmetric"):
        VectorField("dense", EmbeddingKind.DENSE, 8, asymmetric=True)


def test_a_hamming_collection_searched_as_binary_names_the_fix(tmp_path, scifact_docs, dense_embedder):
    """Collections indexed before `binary` became asymmetric hold the field `dense_binary`."""
    uri = f"memory:{tmp_path}"
    with Retriever(uri, ["binary:hamming"], embedder=dense_embedder) as older:
        older.index(scifact_docs[:30])
        expected = [h.id for h in older.search("cell biology", k=10)]
    with Retriever(uri, "dense", embedder=dense_embedder) as reopened:
        with pytest.raises(UnsupportedStrategyError, match="search it with 'binary:hamming'"):
            reopened.search("cell biology", strategy="binary")
        assert [h.id for h in reopened.search("cell biology", k=10, strategy="binary:hamming")] == expected
        assert reopened.count() == 30


def test_schemas_saved_before_asymmetric_existed_read_as_hamming():
    saved = {"name": "dense_binary", "kind": "dense", "dim": 384, "precision": "binary", "distance": "dot"}
    assert VectorField.from_dict(saved).asymmetric is False


def test_strategy_the_embedder_cannot_serve(dense_embedder):
    odd = MatryoshkaEmbedder(dense_embedder, dim=60)
    with pytest.raises(UnsupportedStrategyError, match="divisible by 8"):
        Retriever("memory", "binary", embedder=odd).index([Document("a", "text")])
    with pytest.raises(UnsupportedStrategyError, match="exceeds the model's 384"):
        Retriever("memory", "funnel:512", embedder=dense_embedder).index([Document("a", "text")])
    with pytest.raises(InvalidInputError, match="pass a sparse Embedder"):
        Retriever("memory", "bm25", sparse_embedder=dense_embedder)


def test_strategy_the_store_cannot_serve():
    class DenseOnlyStore(MemoryStore):  # a real store that declares less, as some engines do
        capabilities = Capabilities(kinds=frozenset({EmbeddingKind.DENSE}))

    with pytest.raises(UnsupportedStrategyError, match="cannot store \\['sparse'\\] vectors.*'hybrid'"):
        Retriever(DenseOnlyStore(), "hybrid")


def test_missing_model_path(tmp_path):
    with pytest.raises(ModelLoadError, match="no model directory at"):
        DenseEmbedder(str(tmp_path / "missing"))


def test_bad_store_uri_and_collection_name():
    with pytest.raises(InvalidInputError, match="unknown store URI"):
        Retriever("mongodb://x")
    with pytest.raises(InvalidInputError, match="collection name"):
        Retriever("memory", collection="../escape")


def test_every_error_is_a_ragembed_error():
    for cls in (
        InvalidInputError,
        DimensionMismatchError,
        ModelLoadError,
        SchemaMismatchError,
        UnsupportedStrategyError,
    ):
        assert issubclass(cls, RagembedError)
