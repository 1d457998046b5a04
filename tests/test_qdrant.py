"""Qdrant adapters with the real model on real SciFact text: the embedded engine (qdrant-edge)
and qdrant-client's local mode. (The store-level contract is in tests/contract.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from qdrant_server import unavailable_reason

from ragembed import (
    DenseEmbeddings,
    Document,
    MemoryStore,
    MultiVectorEmbeddings,
    Retriever,
    Schema,
    VectorField,
    VectorSearch,
)
from ragembed.errors import SchemaMismatchError, StoreError
from ragembed.evaluation import load_beir
from ragembed.stores.qdrant import QdrantEdgeStore, QdrantStore
from ragembed.types import EmbeddingKind, Precision

QDRANT_SKIP = unavailable_reason()

QUERIES = [
    "vitamin D and bone health",
    "tumour growth in mice",
    "insulin resistance in obesity",
    "antibiotic resistance of bacteria",
    "DNA repair mechanisms",
]


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def top_ids(retriever: Retriever, strategy: str, k: int = 10) -> list[list[str]]:
    return [[h.id for h in hits] for hits in retriever.search_many(QUERIES, k=k, strategy=strategy)]


REFERENCE_STRATEGIES = ["dense", "int8", "binary", "funnel:64", "bm25", "hybrid"]


def memory_reference(docs, dense_embedder, bm25_embedder, **passages) -> Retriever:
    r = Retriever(
        MemoryStore(), REFERENCE_STRATEGIES, embedder=dense_embedder, sparse_embedder=bm25_embedder, **passages
    )
    r.index(docs)
    return r


@pytest.fixture(scope="module")
def reference(scifact_docs, dense_embedder, bm25_embedder):
    """The memory store's answers, the collection in passages (the default)."""
    return memory_reference(scifact_docs, dense_embedder, bm25_embedder)


def test_edge_engine_returns_the_memory_store_results(tmp_path, reference, scifact_docs, dense_embedder, bm25_embedder):
    edge = Retriever(
        QdrantEdgeStore(tmp_path), list(reference.strategies), embedder=dense_embedder, sparse_embedder=bm25_embedder
    )
    edge.index(scifact_docs)
    assert edge.chunking is not None  # in passages, each a point of its own
    for strategy in ("dense", "funnel:64", "bm25", "hybrid"):  # exact on both engines
        assert top_ids(edge, strategy) == top_ids(reference, strategy), strategy
    for strategy in ("int8", "binary"):  # Qdrant's own quantization, rescored
        same = [len(set(a) & set(b)) for a, b in zip(top_ids(edge, strategy), top_ids(reference, "dense"))]
        assert sum(same) >= 9 * len(QUERIES), (strategy, same)
    edge.close()


def test_local_mode_warns_and_serves_quantization_client_side(scifact_docs, dense_embedder, bm25_embedder):
    local = Retriever(
        QdrantStore(path=":memory:"), list(REFERENCE_STRATEGIES), embedder=dense_embedder, sparse_embedder=bm25_embedder
    )
    assert local.chunking is None  # local mode keeps no int8/binary index of passage vectors: whole by default
    with pytest.warns(UserWarning, match="no native quantization"):
        local.index(scifact_docs)
    whole = memory_reference(scifact_docs, dense_embedder, bm25_embedder, passages=False)
    for strategy in local.strategies:
        assert top_ids(local, strategy) == top_ids(whole, strategy), strategy


@pytest.mark.colbert
def test_edge_colbert_maxsim_matches_the_memory_store(tmp_path, scifact_docs, dense_embedder, colbert_embedder):
    kwargs = {"embedder": dense_embedder, "multivector_embedder": colbert_embedder}
    memory = Retriever(MemoryStore(), ["colbert", "colbert+dense"], **kwargs)
    edge = Retriever(QdrantEdgeStore(tmp_path), ["colbert", "colbert+dense"], **kwargs)
    for r in (memory, edge):
        r.index(scifact_docs[:60])
    for strategy in ("colbert", "colbert+dense"):
        assert top_ids(edge, strategy, 5) == top_ids(memory, strategy, 5)
    edge.close()


@pytest.mark.colbert
def test_compressed_colbert_tokens_keep_exact_maxsim_top10_on_scifact(
    tmp_path, scifact_docs, dense_embedder, colbert_embedder
):
    """Real ColBERT tokens kept as float16 / TurboQuant on Qdrant Edge against exact float32 MaxSim
    (floors under what they kept when set: 1.00, 1.00 and 0.98 of the top 10 over 10 queries)."""
    kwargs = {"embedder": dense_embedder, "multivector_embedder": colbert_embedder}
    exact = Retriever(MemoryStore(), "colbert", **kwargs)
    floors = {"colbert:float16": 0.99, "colbert:turbo8": 0.97, "colbert:turbo4": 0.9}
    edge = Retriever(QdrantEdgeStore(tmp_path), [*floors, "colbert+dense:turbo4"], **kwargs)
    for r in (exact, edge):
        r.index(scifact_docs)
    queries = [d.text.split(".")[0] for d in scifact_docs[::12]]  # each document's first sentence
    truth = [{h.id for h in exact.search(q, k=10)} for q in queries]
    for strategy, floor in floors.items():
        found = [{h.id for h in edge.search(q, k=10, strategy=strategy)} for q in queries]
        kept = sum(len(f & t) for f, t in zip(found, truth)) / (10 * len(queries))
        assert kept >= floor, (strategy, kept)
    for q, doc in zip(queries, scifact_docs[::12]):  # the two-stage strategy finds the document it quotes
        assert doc.id in {h.id for h in edge.search(q, k=10, strategy="colbert+dense:turbo4")}
    edge.close()


INDEX_THEN_SEARCH = """
    import json, sys
    from ragembed import Retriever
    from ragembed.sources import load_documents
    store_uri, mode = sys.argv[1], sys.argv[2]
    with Retriever(store_uri, ["hybrid", "binary"]) as r:
        if mode == "index":
            r.index(load_documents("{docs}")[:40])
        print(json.dumps({{s: [h.id for h in r.search("cancer cells", k=5, strategy=s)] for s in r.strategies}}))
"""


def test_a_batch_larger_than_one_request_is_sent_in_several(monkeypatch, scifact_docs, dense_embedder):
    """search_many splits its queries into batch requests of BATCH_REQUESTS (Qdrant's request size
    limit) and answers exactly as one search per query."""
    import ragembed.stores.qdrant.client as client

    retriever = Retriever(QdrantStore("batches", path=":memory:"), "dense", embedder=dense_embedder)
    retriever.index(scifact_docs[:50])
    sent = []
    batch = client.QdrantClient.query_batch_points
    monkeypatch.setattr(client, "BATCH_REQUESTS", 2)
    monkeypatch.setattr(
        client.QdrantClient,
        "query_batch_points",
        lambda c, name, requests, **kw: sent.append(len(requests)) or batch(c, name, requests, **kw),
    )
    queries = [d.text for d in scifact_docs[:5]]
    many = retriever.search_many(queries, k=3)
    assert sent == [2, 2, 1]
    assert [[h.id for h in hits] for hits in many] == [[h.id for h in retriever.search(q, k=3)] for q in queries]


@pytest.mark.parametrize("scheme", ["qdrant-edge", "qdrant-local"])
def test_index_close_and_reopen_in_a_new_process(tmp_path, scifact_dir, scheme):
    script = INDEX_THEN_SEARCH.format(docs=scifact_dir / "corpus.jsonl")
    uri = f"{scheme}:{tmp_path / 'store'}"
    first = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), uri, "index"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert first.returncode == 0, first.stderr[-2000:]
    second = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), uri, "search"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert second.returncode == 0, second.stderr[-2000:]
    assert json.loads(second.stdout.splitlines()[-1]) == json.loads(first.stdout.splitlines()[-1])


@pytest.mark.parametrize("scheme", ["qdrant-edge", "qdrant-local"])
def test_a_second_process_gets_an_error_naming_cause_and_fix(tmp_path, scifact_docs, dense_embedder, scheme):
    from ragembed.stores.uri import open_store

    holder = Retriever(open_store(f"{scheme}:{tmp_path}"), "dense", embedder=dense_embedder)
    holder.index(scifact_docs[:5])
    other = run_python(f"""
        from ragembed.stores.uri import open_store
        from ragembed.errors import StoreError
        try:
            open_store("{scheme}:{tmp_path}")
        except StoreError as exc:
            print("StoreError:", exc)
    """)
    assert "StoreError:" in other.stdout, other.stderr[-2000:]
    named = f"open for writing by process {os.getpid()}" in other.stdout  # the Edge folder's lock
    assert named or "open in another process" in other.stdout, other.stdout  # qdrant-client's own lock
    assert "server" in other.stdout
    holder.close()
    assert open_store(f"{scheme}:{tmp_path}").count() == 5  # released on close


def test_a_collection_not_made_by_ragembed_is_refused(tmp_path):
    store = QdrantStore(path=str(tmp_path))
    from qdrant_client import models

    store.client.create_collection("foreign", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    store.close()
    with pytest.raises(StoreError, match="not created by ragembed"):
        QdrantStore("foreign", path=str(tmp_path))


def test_hnsw_and_quantized_search_keep_recall_on_scifact(tmp_path, scifact_dir, dense_embedder):
    """With a low indexing threshold the engine builds HNSW and int8/binary indexes; approximate
    results must keep recall@10 >= 0.99 against exact search."""
    data = load_beir(scifact_dir, "test")
    docs, queries = data.corpus[:600], list(data.queries.values())[:100]
    exact = Retriever(MemoryStore(), "dense", embedder=dense_embedder)
    exact.index(docs)
    store = QdrantEdgeStore(tmp_path, indexing_threshold_kb=64)
    approx = Retriever(store, ["dense", "int8", "binary"], embedder=dense_embedder)
    approx.index(docs)
    assert store._shard.info().indexed_vectors_count > 0  # HNSW really built
    truth = [{h.id for h in hits} for hits in exact.search_many(queries, k=10)]
    for strategy in ("dense", "int8", "binary"):
        found = approx.search_many(queries, k=10, strategy=strategy)
        recall = sum(len(t & {h.id for h in f}) for t, f in zip(truth, found)) / (10 * len(queries))
        assert recall >= 0.99, (strategy, recall)
    approx.close()


def test_an_unreachable_server_is_a_clear_error_and_the_key_stays_secret(monkeypatch):
    monkeypatch.setenv("QDRANT_API_KEY", "secret-key-123")
    from ragembed.stores.uri import open_store

    with pytest.raises(
        StoreError, match="cannot reach the Qdrant server at http://127.0.0.1:9.*docker compose"
    ) as failure:
        open_store("qdrant://127.0.0.1:9")
    assert "secret-key-123" not in str(failure.value)


def test_local_mode_refuses_server_settings_it_cannot_honour():
    with pytest.raises(StoreError, match="shard_number, indexing_threshold_kb only apply to a Qdrant server"):
        QdrantStore(path=":memory:", shard_number=2, indexing_threshold_kb=64)
    with pytest.raises(StoreError, match="vectors_on_disk only apply to a Qdrant server"):
        QdrantStore(path=":memory:", vectors_on_disk=True)


def on_disk_fields() -> tuple[Schema, dict]:
    schema = Schema(
        (
            VectorField("dense", EmbeddingKind.DENSE, 4),
            VectorField("colbert", EmbeddingKind.MULTIVECTOR, 4, distance="dot"),
            VectorField("dense_int8", EmbeddingKind.DENSE, 4, Precision.INT8, "dot", calibration=CALIBRATION_4D),
        )
    )
    vectors = {
        "dense": DenseEmbeddings(np.eye(4, dtype=np.float32)[:2]),
        "colbert": MultiVectorEmbeddings((np.eye(4, dtype=np.float32)[:2], np.eye(4, dtype=np.float32)[2:])),
        "dense_int8": DenseEmbeddings(np.eye(4, dtype=np.float32)[:2]),
    }
    return schema, vectors


CALIBRATION_4D = {"lo": [-1.0] * 4, "hi": [1.0] * 4}
TWO_DOCS = [Document("a", "first"), Document("b", "second")]


def test_edge_keeps_full_vectors_on_disk_when_asked_and_refuses_the_other_setting_later(tmp_path):
    schema, vectors = on_disk_fields()
    with QdrantEdgeStore(tmp_path, "c", vectors_on_disk=True) as store:
        store.ensure_schema(schema)
        store.upsert(TWO_DOCS, vectors)
    config = json.loads((tmp_path / "c" / "shard" / "edge_config.json").read_text())  # the engine's own record
    assert {name: v["on_disk"] for name, v in config["vectors"].items()} == {
        "dense": True,
        "colbert": True,
        "dense_int8": True,
    }
    with pytest.raises(SchemaMismatchError, match="keeps its full vectors on disk, not as vectors_on_disk=False"):
        QdrantEdgeStore(tmp_path, "c", vectors_on_disk=False)
    with QdrantEdgeStore(tmp_path, "c") as store:  # no preference: opens as it was made, nothing lost
        assert store.vectors_on_disk and store.count() == 2
        hit = store.search(VectorSearch("dense", DenseEmbeddings(np.eye(4, dtype=np.float32)[1:2]), 1))[0]
        assert hit.id == "b"
    with QdrantEdgeStore(tmp_path / "ram", "c") as store:  # the default: in RAM, quantized originals on disk
        store.ensure_schema(schema)
    config = json.loads((tmp_path / "ram" / "c" / "shard" / "edge_config.json").read_text())
    assert {name: bool(v.get("on_disk")) for name, v in config["vectors"].items()} == {
        "dense": False,
        "colbert": False,
        "dense_int8": True,
    }


WRITE_THEN_DIE = """
    import os
    import numpy as np
    from ragembed import DenseEmbeddings, Document, Schema, VectorField
    from ragembed.stores.qdrant import QdrantEdgeStore
    from ragembed.types import EmbeddingKind
    store = QdrantEdgeStore({folder!r}, "c", write_ahead_log=False)
    if {step!r} == "create":
        store.ensure_schema(Schema([VectorField("dense", EmbeddingKind.DENSE, 4)]))
        store.upsert([Document("a", "first"), Document("b", "second")], {{"dense": DenseEmbeddings(np.eye(4)[:2])}})
    else:
        store.delete(["a"])
    os._exit(0)  # no close, no flush: what the calls returned from must already be on disk
"""


def test_edge_without_a_write_ahead_log_keeps_each_write_when_the_process_dies_and_refuses_the_other_setting(tmp_path):
    for step in ("create", "delete"):
        done = run_python(WRITE_THEN_DIE.format(folder=str(tmp_path), step=step))
        assert done.returncode == 0, done.stderr[-2000:]
        assert not (tmp_path / "c" / "shard" / "wal").exists()
        with QdrantEdgeStore(tmp_path, "c") as store:  # no preference: opens as it was made
            assert not store.write_ahead_log
            assert sorted(d.id for d in store.get(["a", "b"])) == (["a", "b"] if step == "create" else ["b"])
    with pytest.raises(SchemaMismatchError, match="made without a write-ahead log, not as write_ahead_log=True"):
        QdrantEdgeStore(tmp_path, "c", write_ahead_log=True)
    with QdrantEdgeStore(tmp_path, "c") as store:  # the refusal lost nothing
        assert store.count() == 1
    with QdrantEdgeStore(tmp_path / "logged", "c") as store:  # the default keeps Qdrant's log
        store.ensure_schema(Schema([VectorField("dense", EmbeddingKind.DENSE, 4)]))
        assert store.write_ahead_log
    assert (tmp_path / "logged" / "c" / "shard" / "wal").is_dir()
    with pytest.raises(SchemaMismatchError, match="made with a write-ahead log, not as write_ahead_log=False"):
        QdrantEdgeStore(tmp_path / "logged", "c", write_ahead_log=False)


@pytest.mark.server
@pytest.mark.skipif(QDRANT_SKIP is not None, reason=QDRANT_SKIP or "")
def test_a_server_collection_keeps_full_vectors_on_disk_when_asked(tmp_path):
    from qdrant_server import session_server

    schema, vectors = on_disk_fields()
    url = session_server()[0]
    name = f"on_disk_{tmp_path.name[-30:]}"
    store = QdrantStore(name, url=url, vectors_on_disk=True)
    try:
        store.drop()
        store.ensure_schema(schema)
        store.upsert(TWO_DOCS, vectors)
        stored = store.client.get_collection(name).config.params.vectors
        assert {n: bool(v.on_disk) for n, v in stored.items()} == {"dense": True, "colbert": True, "dense_int8": True}
        with pytest.raises(SchemaMismatchError, match=r"keeps the fields \['dense', 'colbert'\] on disk, not in RAM"):
            QdrantStore(name, url=url, vectors_on_disk=False)
        reopened = QdrantStore(name, url=url)
        assert reopened.count() == 2
        reopened.close()
    finally:
        store.drop()
        store.close()
