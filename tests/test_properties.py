"""Property-based tests (hypothesis): random unicode, control characters, odd ids, NaN/inf and
wrongly sized vectors, odd filters. Each either works correctly or raises a ragembed error; no
crash, no corrupted collection."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragembed import DenseEmbeddings, Document, MemoryStore, Range, Schema, VectorField, VectorSearch
from ragembed.errors import InvalidInputError, RagembedError
from ragembed.stores.qdrant import QdrantEdgeStore
from ragembed.types import EmbeddingKind

DIM = 8
SCHEMA = Schema((VectorField("dense", EmbeddingKind.DENSE, DIM),))
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

ids = st.text(min_size=1, max_size=200).filter(lambda s: s.strip() and "\x00" not in s)
texts = st.text(min_size=1, max_size=2000).filter(lambda s: s.strip())
metadata = st.dictionaries(
    st.text(alphabet="abcdefghij_", min_size=1, max_size=8),
    st.one_of(
        st.text(max_size=20),
        st.integers(-(10**6), 10**6),
        st.booleans(),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
    ),
    max_size=4,
)
documents = st.lists(st.builds(Document, ids, texts, metadata), min_size=1, max_size=20, unique_by=lambda d: d.id)


def vectors(n: int, seed: int) -> dict:
    data = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return {"dense": DenseEmbeddings(data)}


@pytest.fixture(params=["memory", "qdrant-edge", "qdrant-local", "qdrant-server", "weaviate"])
def make_store(request, tmp_path):
    counter = iter(range(10**6))
    if request.param == "qdrant-server":
        from qdrant_server import session_server
        from qdrant_server import unavailable_reason as qdrant_unavailable

        if qdrant_unavailable():
            pytest.skip(qdrant_unavailable())
        url, prefix = session_server()[0], f"prop_{uuid.uuid4().hex[:8]}"
    if request.param == "weaviate":
        from weaviate_server import embedded_client, unavailable_reason

        if unavailable_reason():
            pytest.skip(unavailable_reason())
        from ragembed.stores.weaviate import WeaviateStore

        client, prefix = embedded_client(), f"Prop{uuid.uuid4().hex[:8]}"

    def make():
        if request.param == "memory":
            return MemoryStore(tmp_path / f"m{next(counter)}")
        if request.param in ("qdrant-local", "qdrant-server"):
            from ragembed.stores.qdrant import QdrantStore

            if request.param == "qdrant-server":
                return QdrantStore(f"{prefix}_{next(counter)}", url=url)
            return QdrantStore(f"c{next(counter)}", path=":memory:")
        if request.param == "weaviate":
            return WeaviateStore(collection=f"{prefix}_{next(counter)}", client=client)
        return QdrantEdgeStore(tmp_path / "edge", f"c{next(counter)}")

    yield make
    # Hypothesis makes a collection per example: drop them from the shared servers.
    if request.param == "qdrant-server":
        from qdrant_client import QdrantClient

        admin = QdrantClient(url=url)
        for c in admin.get_collections().collections:
            if c.name.startswith(prefix):
                admin.delete_collection(c.name)
        admin.close()
    if request.param == "weaviate":
        for name in client.collections.list_all(simple=True):
            if name.startswith(prefix):
                client.collections.delete(name)


@SETTINGS
@given(docs=documents, seed=st.integers(0, 1000))
def test_any_documents_round_trip(make_store, docs, seed):
    store = make_store()
    store.ensure_schema(SCHEMA)
    store.upsert(docs, vectors(len(docs), seed))
    store.upsert(docs, vectors(len(docs), seed))  # idempotent
    assert store.count() == len(docs)
    assert store.get([d.id for d in docs]) == docs
    hits = store.search(VectorSearch("dense", DenseEmbeddings(vectors(1, seed + 1)["dense"].data), len(docs)))
    assert sorted(h.id for h in hits) == sorted(d.id for d in docs)
    store.close()


@SETTINGS
@given(bad=st.sampled_from([np.nan, np.inf, -np.inf]), row=st.integers(0, 3), width=st.integers(1, 16))
def test_nan_inf_and_wrong_widths_are_refused_and_nothing_is_lost(make_store, bad, row, width):
    store = make_store()
    store.ensure_schema(SCHEMA)
    kept = [Document("kept", "kept text")]
    store.upsert(kept, vectors(1, 0))
    data = np.random.default_rng(row).normal(size=(4, DIM)).astype(np.float32)
    data[row, row % DIM] = bad
    docs = [Document(f"d{i}", f"text {i}") for i in range(4)]
    with pytest.raises(RagembedError):
        store.upsert(docs, {"dense": DenseEmbeddings(data)})
    if width != DIM:
        with pytest.raises(RagembedError):
            store.upsert(docs, {"dense": DenseEmbeddings(np.ones((4, width), np.float32))})
    assert store.count() == 1 and store.get(["kept"]) == kept
    store.close()


filters = st.dictionaries(
    st.text(min_size=0, max_size=6),
    st.one_of(
        st.text(max_size=5),
        st.integers(),
        st.booleans(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.lists(st.one_of(st.text(max_size=3), st.integers()), max_size=3),
        st.tuples(st.integers(-5, 5), st.one_of(st.none(), st.integers(-5, 5)))  # empty ranges: refused
        .filter(lambda b: b[1] is None or b[0] < b[1])
        .map(lambda b: Range(gte=b[0], lt=b[1])),
        st.none(),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
    ),
    max_size=3,
)


@SETTINGS
@given(flt=filters)
def test_any_filter_is_a_result_or_a_ragembed_error(make_store, flt):
    store = make_store()
    store.ensure_schema(SCHEMA)
    docs = [
        Document(f"d{i}", f"text {i}", {"a": i, "b": "x" if i % 2 else "y", "c": [f"t{i}", "all"]}) for i in range(6)
    ]
    store.upsert(docs, vectors(6, 1))
    try:
        hits = store.search(VectorSearch("dense", vectors(1, 2)["dense"], 6), filter=flt)
    except RagembedError:
        return
    assert {h.id for h in hits} <= {d.id for d in docs}
    store.close()


# --- files and the command line ----------------------------------------------------------------
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)
corpus_records = st.dictionaries(
    st.sampled_from(["_id", "id", "text", "title", "metadata", "other"]),
    st.one_of(json_values, st.text(min_size=1, max_size=200)),
    max_size=6,
)
corpus_lines = st.one_of(
    corpus_records.map(lambda r: json.dumps(r, allow_nan=True)),  # NaN/Infinity too, as Python writes them
    st.builds(lambda i, t: json.dumps({"_id": i, "text": t}), ids, texts),
    st.builds(lambda i, t, m: json.dumps({"_id": i, "text": t, "metadata": m}), ids, texts, json_values),
    st.text(max_size=300).filter(lambda s: "\n" not in s and "\r" not in s),  # not JSON at all
    st.binary(max_size=200).filter(lambda b: b"\n" not in b and b"\r" not in b).map(lambda b: b.decode("latin-1")),
)
qrels_lines = st.one_of(
    st.builds(
        lambda q, d, s: f"{q}\t{d}\t{s}",
        st.sampled_from(["q1", "q2", "qx"]),
        st.sampled_from(["d0", "d1"]),
        st.one_of(st.integers(-2, 3), st.text(max_size=4)),
    ),
    st.text(max_size=60).filter(lambda s: "\n" not in s and "\r" not in s),
)


def write_lines(path, lines, raw_bytes: bytes = b"") -> None:
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + b"\n" + raw_bytes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(corpus_lines, min_size=1, max_size=8), raw=st.sampled_from([b"", b"\xff\xfe\x00", b"\xc3("]))
def test_any_corpus_file_loads_or_fails_naming_the_line(tmp_path_factory, lines, raw):
    from ragembed.sources import load_documents

    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    write_lines(path, lines, raw)
    try:
        docs = load_documents(path)
    except InvalidInputError as exc:
        assert str(path) in str(exc)  # the message names the file (and the line, where there is one)
        return
    assert all(isinstance(d.id, str) and d.id and isinstance(d.text, str) and d.text.strip() for d in docs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    queries=st.lists(corpus_lines, min_size=0, max_size=5),
    qrels=st.lists(qrels_lines, min_size=0, max_size=6),
    raw=st.sampled_from([b"", b"\xff\xfe", b"q1\td0\t1\x00"]),
)
def test_any_beir_folder_loads_or_fails_naming_the_file(tmp_path_factory, queries, qrels, raw):
    from ragembed.evaluation import load_beir

    folder = tmp_path_factory.mktemp("beir")
    (folder / "qrels").mkdir()
    write_lines(folder / "corpus.jsonl", [json.dumps({"_id": f"d{i}", "text": f"text {i}"}) for i in range(2)])
    write_lines(folder / "queries.jsonl", [json.dumps({"_id": "q1", "text": "a query"}), *queries])
    write_lines(folder / "qrels" / "test.tsv", ["query-id\tcorpus-id\tscore", *qrels], raw)
    try:
        data = load_beir(folder)
    except InvalidInputError as exc:
        assert str(folder) in str(exc)
        return
    assert set(data.qrels) <= set(data.queries) and all(data.queries.values())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=st.text(max_size=3000),
    k=st.integers(-3, 10**9),
    filter_args=st.lists(st.text(max_size=20).filter(lambda s: not s.startswith("-")), max_size=2),
)
def test_the_search_command_answers_or_exits_2_with_a_message(indexed_folder, capsys, query, k, filter_args):
    from ragembed.cli import main

    argv = ["search", query, "-k", str(k), "--store", f"memory:{indexed_folder}", "--json"]
    for f in filter_args:
        argv += ["--filter", f]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusal (a query that looks like an option)
        code = exc.code
    out, err = capsys.readouterr()
    assert code in (0, 2), err
    if code == 0:
        hits = json.loads(out)
        assert len(hits) <= min(max(k, 0), 6) and all(h["id"].startswith("doc") for h in hits)
    else:
        assert err.startswith(("ragembed: error:", "usage:")) and "Traceback" not in err


long_texts = texts.map(lambda s: (s + " ") * (40_000 // (len(s) + 1) + 1))  # 40,000+ characters
queries = st.text(min_size=1, max_size=500).filter(lambda s: s.strip())


def any_documents(max_size: int) -> st.SearchStrategy[list[Document]]:
    """1 to max_size documents of any text, long ones far past the model's window among them."""
    return st.lists(
        st.builds(Document, ids, st.one_of(texts, long_texts)), min_size=1, max_size=max_size, unique_by=lambda d: d.id
    )


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=any_documents(max_size=3), query=queries)
def test_any_text_splits_into_passages_that_are_its_own_characters(dense_embedder, docs, query):
    """The same texts in passages (the default): each is indexed, found, and every hit's passage is
    the slice of its document its offsets name."""
    from ragembed import Retriever

    retriever = Retriever(MemoryStore(), "dense", embedder=dense_embedder)
    assert retriever.chunking is not None
    assert retriever.index(docs) == len(docs) and retriever.count() == len(docs)
    hits = retriever.search(query, k=10)
    assert sorted(h.id for h in hits) == sorted(d.id for d in docs)
    for h in hits:
        assert h.passage is not None and h.text[h.passage.start : h.passage.end] == h.passage.text


@pytest.fixture(scope="module")
def indexed_folder(tmp_path_factory, dense_embedder):
    from ragembed import Retriever

    folder = tmp_path_factory.mktemp("indexed")
    retriever = Retriever(MemoryStore(folder / "default"), "dense", embedder=dense_embedder)
    retriever.index(
        [Document(f"doc{i}", f"text number {i} about cells", {"year": 2000 + i, "tag": "a"}) for i in range(6)]
    )
    retriever.close()
    return folder


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=any_documents(max_size=4), query=queries)
def test_any_text_indexes_and_searches_through_the_model(dense_embedder, docs, query):
    """Control characters, any script, texts far past the model's 256 tokens: embedded whole
    (truncated), stored and found; each document is its own best match."""
    from ragembed import Retriever

    retriever = Retriever(MemoryStore(), "dense", embedder=dense_embedder, passages=False)
    assert retriever.index(docs) == len(docs) and retriever.count() == len(docs)
    assert len(retriever.search(query, k=10)) == len(docs)
    for doc, hits in zip(docs, retriever.search_many([d.text for d in docs], k=len(docs))):
        own = next(h.score for h in hits if h.id == doc.id)
        assert own >= hits[0].score - 1e-5  # first, or tied with a document of the same embedding


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(corpus_lines, min_size=1, max_size=5))
def test_the_index_command_indexes_or_exits_2_keeping_what_was_stored(tmp_path_factory, capsys, lines):
    from ragembed.cli import main
    from ragembed.sources import load_documents

    folder = tmp_path_factory.mktemp("cli")
    (folder / "kept.jsonl").write_text(json.dumps({"_id": "kept", "text": "stored before"}) + "\n")
    store = f"memory:{folder / 'store'}"
    assert main(["index", str(folder / "kept.jsonl"), "--store", store]) == 0
    write_lines(folder / "corpus.jsonl", lines)
    try:
        expected, valid = {d.id for d in load_documents(folder / "corpus.jsonl")} | {"kept"}, True
    except InvalidInputError:
        expected, valid = {"kept"}, False
    capsys.readouterr()
    code = main(["index", str(folder / "corpus.jsonl"), "--store", store, "--json"])
    _, err = capsys.readouterr()
    assert code == (0 if valid else 2), err
    if not valid:
        assert err.startswith("ragembed: error:") and "corpus.jsonl" in err
    with MemoryStore(folder / "store" / "default") as reopened:
        assert {d.id for d in reopened.get(sorted(expected))} == expected  # nothing stored is lost
        assert reopened.count() == len(expected)
