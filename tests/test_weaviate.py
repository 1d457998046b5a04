"""Weaviate with the real model on real SciFact text: a real server (started by
scripts/weaviate.sh, or $WEAVIATE_URL) and embedded mode. The store contract is in tests/contract."""

from __future__ import annotations

import re
import uuid

import pytest
from weaviate_server import ScriptServer, embedded_client, session_server, unavailable_reason

from ragembed import MemoryStore, Retriever
from ragembed.errors import (
    InvalidInputError,
    PartialWriteError,
    SchemaMismatchError,
    StoreError,
    UnsupportedStrategyError,
)

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))

QUERIES = [
    "vitamin D and bone health",
    "tumour growth in mice",
    "insulin resistance in obesity",
    "antibiotic resistance of bacteria",
    "DNA repair mechanisms",
]


def weaviate(collection: str | None = None, **options):
    from ragembed.stores.weaviate import WeaviateStore

    url, grpc_port = session_server()
    return WeaviateStore(url, collection or f"Test_{uuid.uuid4().hex[:12]}", grpc_port=grpc_port, **options)


def top_ids(retriever: Retriever, strategy: str, k: int = 10) -> list[list[str]]:
    return [[h.id for h in hits] for hits in retriever.search_many(QUERIES, k=k, strategy=strategy)]


@pytest.fixture(scope="module")
def reference(scifact_docs, dense_embedder):
    r = Retriever(MemoryStore(), ["dense", "int8", "binary", "funnel:64"], embedder=dense_embedder)
    r.index(scifact_docs)
    return r


def test_flat_index_returns_the_memory_store_results(reference, scifact_docs, dense_embedder):
    store = weaviate(index="flat")
    retriever = Retriever(store, list(reference.strategies), embedder=dense_embedder)
    retriever.index(scifact_docs)
    for strategy in ("dense", "funnel:64", "int8", "binary"):  # quantized: rescored by Weaviate
        assert top_ids(retriever, strategy) == top_ids(reference, strategy), strategy
    store.drop()
    store.close()


def test_hnsw_default_keeps_recall(reference, scifact_docs, dense_embedder):
    store = weaviate()  # HNSW, Weaviate's default index
    retriever = Retriever(store, ["dense", "binary"], embedder=dense_embedder)
    retriever.index(scifact_docs)
    for strategy in ("dense", "binary"):
        found = sum(len(set(a) & set(b)) for a, b in zip(top_ids(retriever, strategy), top_ids(reference, "dense")))
        assert found >= 0.98 * 10 * len(QUERIES), strategy
    store.drop()
    store.close()


def test_keyword_and_hybrid_use_weaviate_bm25(scifact_docs, dense_embedder):
    store = weaviate(index="flat")
    retriever = Retriever(store, ["keyword", "keyword-hybrid", "keyword-hybrid:1", "dense"], embedder=dense_embedder)
    retriever.index(scifact_docs)
    # A document's own title finds it first by keyword.
    doc = scifact_docs[17]
    assert retriever.search(doc.metadata["title"], k=1, strategy="keyword")[0].id == doc.id
    # BM25 finds only documents sharing a word with the query.
    for query, hits in zip(QUERIES, retriever.search_many(QUERIES, k=10, strategy="keyword")):
        words = set(re.findall(r"\w+", query.lower()))
        assert hits and all(words & set(re.findall(r"\w+", h.text.lower())) for h in hits)
    # alpha 1 is the dense ranking; fused scores come out in descending order.
    assert top_ids(retriever, "keyword-hybrid:1") == top_ids(retriever, "dense")
    for hits in retriever.search_many(QUERIES, k=10, strategy="keyword-hybrid"):
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    filtered = retriever.search(
        doc.metadata["title"], k=5, strategy="keyword-hybrid", filter={"title": doc.metadata["title"]}
    )
    assert [h.id for h in filtered] == [doc.id]
    store.drop()
    store.close()


def test_restarting_the_server_keeps_the_data(tmp_path, scifact_docs, dense_embedder):
    from ragembed.stores.weaviate import WeaviateStore

    server = ScriptServer.on_free_ports(tmp_path / "data")
    server.start()
    try:
        retriever = Retriever(
            WeaviateStore(server.url, "Kept", grpc_port=server.grpc_port), ["dense", "keyword"], embedder=dense_embedder
        )
        retriever.index(scifact_docs)
        before = top_ids(retriever, "dense"), top_ids(retriever, "keyword")
        retriever.close()
        server.stop()
        server.start()
        reopened = Retriever(
            WeaviateStore(server.url, "Kept", grpc_port=server.grpc_port), ["dense", "keyword"], embedder=dense_embedder
        )
        assert reopened.count() == len(scifact_docs)
        assert (top_ids(reopened, "dense"), top_ids(reopened, "keyword")) == before
        reopened.close()
    finally:
        server.stop()


def test_embedded_mode_keeps_the_data_across_restarts(tmp_path, scifact_docs, dense_embedder):
    from ragembed.stores.weaviate import WeaviateStore

    retriever = Retriever(WeaviateStore.embedded(tmp_path / "wv", "docs"), "dense", embedder=dense_embedder)
    retriever.index(scifact_docs[:40])
    before = top_ids(retriever, "dense")
    retriever.close()  # stops the embedded server
    again = Retriever("weaviate-embedded:" + str(tmp_path / "wv"), "dense", embedder=dense_embedder, collection="docs")
    assert again.count() == 40 and top_ids(again, "dense") == before
    again.close()


def test_muvera_keeps_maxsim_recall(scifact_docs, colbert_embedder):
    exact = Retriever(MemoryStore(), "colbert", multivector_embedder=colbert_embedder)
    exact.index(scifact_docs)
    store = weaviate(muvera=True)
    muvera = Retriever(store, "colbert", multivector_embedder=colbert_embedder)
    muvera.index(scifact_docs)
    found = sum(len(set(a) & set(b)) for a, b in zip(top_ids(muvera, "colbert"), top_ids(exact, "colbert")))
    assert found >= 0.8 * 10 * len(QUERIES)
    store.drop()
    store.close()


def test_muvera_behind_the_dense_first_stage_ranks_every_candidate_by_maxsim(
    scifact_docs, dense_embedder, colbert_embedder
):
    """MUVERA returns what its encodings rank highest and rescores only those with MaxSim: the
    store asks for the whole candidate pool, so the top 10 is exact MaxSim's over the pool."""
    options = dict(embedder=dense_embedder, multivector_embedder=colbert_embedder)
    exact = Retriever(MemoryStore(), "colbert+dense", **options)
    exact.index(scifact_docs)
    store = weaviate(muvera=True)
    muvera = Retriever(store, "colbert+dense", **options)
    muvera.index(scifact_docs)
    found = sum(len(set(a) & set(b)) for a, b in zip(top_ids(muvera, "colbert+dense"), top_ids(exact, "colbert+dense")))
    assert found >= 0.98 * 10 * len(QUERIES)
    store.drop()
    store.close()


def test_per_object_errors_name_the_ids_and_keep_the_rest(scifact_docs, dense_embedder):
    from weaviate.classes.config import DataType, Property

    from ragembed import Document

    store = weaviate(index="flat")
    retriever = Retriever(store, "dense", embedder=dense_embedder)
    retriever.index(scifact_docs[:10])
    # Another tool gave the collection an integer property where ragembed writes text.
    store._collection.config.add_property(Property(name="meta_code__s", data_type=DataType.INT))
    store = weaviate(store.collection, index="flat")
    retriever = Retriever(store, "dense", embedder=dense_embedder)
    docs = [
        Document("ok-1", "a fine text"),
        Document("bad-1", "text with a code", {"code": "x7"}),
        Document("ok-2", "another fine text"),
    ]
    with pytest.raises(PartialWriteError, match="bad-1") as caught:
        retriever.index(docs)
    assert list(caught.value.failed) == ["bad-1"]
    assert [d.id for d in store.get(["ok-1", "bad-1", "ok-2"])] == ["ok-1", "ok-2"]
    assert store.count() == 12
    store.drop()
    store.close()


def test_what_weaviate_cannot_do_is_refused_clearly(tmp_path):
    store = weaviate()
    with pytest.raises(UnsupportedStrategyError, match="sparse"):
        Retriever(store, "bm25")
    with pytest.raises(UnsupportedStrategyError, match="Weaviate does"):
        Retriever(MemoryStore(), "keyword")
    with pytest.raises(StoreError, match="letter"):
        weaviate("no-dashes")
    with pytest.raises(InvalidInputError, match="alpha"):
        Retriever(store, "keyword-hybrid:1.5")
    store.close()


def test_a_collection_not_made_by_ragembed_is_refused():
    name = f"Foreign_{uuid.uuid4().hex[:8]}"
    client = embedded_client()
    client.collections.create(name)
    from ragembed.stores.weaviate import WeaviateStore

    with pytest.raises(SchemaMismatchError, match="not created by ragembed"):
        WeaviateStore(collection=name, client=client)
    client.collections.delete(name)


def test_an_unreachable_server_is_a_clear_error_and_the_key_stays_secret():
    from ragembed.stores.weaviate import WeaviateStore

    with pytest.raises(StoreError, match="cannot reach") as caught:
        WeaviateStore("http://127.0.0.1:9", api_key="sekret-key-123", timeout_s=2)
    assert "sekret-key-123" not in str(caught.value) and "sekret-key-123" not in repr(caught.value)
    with pytest.raises(InvalidInputError, match="http://host:8080"):
        WeaviateStore("ftp://example.org")


def test_filters_on_mixed_types_and_lists(dense_embedder):
    from ragembed import Document, Range

    store = weaviate(index="flat")
    retriever = Retriever(store, "dense", embedder=dense_embedder)
    docs = [
        Document("a", "first text", {"year": 2020, "tags": ["x", "y"]}),
        Document("b", "second text", {"year": "2020", "tags": ["y"]}),
        Document("c", "third text", {"year": 2021.0, "flag": True, "odd key!": 1}),
        Document("d", "fourth text", {"flag": 1}),
    ]
    retriever.index(docs)
    ids = lambda flt: sorted(h.id for h in retriever.search("text", k=10, filter=flt))
    assert ids({"year": 2020}) == ["a"]
    assert ids({"year": "2020"}) == ["b"]
    assert ids({"year": Range(gte=2020)}) == ["a", "c"]
    assert ids({"tags": "y"}) == ["a", "b"]
    assert ids({"flag": True}) == ["c"] and ids({"flag": 1}) == ["d"]
    assert ids({"never": "seen"}) == []
    with pytest.raises(InvalidInputError, match="letters, digits"):
        ids({"odd key!": 1})
    assert store.get(["c"])[0].metadata == docs[2].metadata
    assert store.delete_where({"year": Range(lt=2021)}) == 1 and store.count() == 3
    store.drop()
    store.close()


def test_scalar_quantization_serves_int8_on_hnsw(reference, scifact_docs, dense_embedder):
    store = weaviate(int8_compression="sq")
    retriever = Retriever(store, "int8", embedder=dense_embedder)
    retriever.index(scifact_docs)
    found = sum(len(set(a) & set(b)) for a, b in zip(top_ids(retriever, "int8"), top_ids(reference, "dense")))
    assert found >= 0.98 * 10 * len(QUERIES)
    config = store._collection.config.get().vector_config["dense_int8"].vector_index_config
    assert type(config.quantizer).__name__ == "_SQConfig"
    with pytest.raises(StoreError, match="sq"):
        weaviate(index="flat", int8_compression="sq")
    store.drop()
    store.close()


def test_settings_it_cannot_honour_are_refused(scifact_docs, dense_embedder):
    store = weaviate(index="flat")
    retriever = Retriever(store, ["dense", "binary:norescore"], embedder=dense_embedder)
    retriever.index(scifact_docs[:20])
    # Weaviate rescores every compressed search: a search without rescoring cannot be had.
    with pytest.raises(UnsupportedStrategyError, match="without rescoring"):
        retriever.search("tumour growth", strategy="binary:norescore")
    # Index settings are fixed at creation: asking for others is an error, not a silent no-op.
    with pytest.raises(SchemaMismatchError, match="index"):
        weaviate(store.collection, index="hnsw")
    assert weaviate(store.collection).settings["index"] == "flat"
    store.drop()
    store.close()


def test_an_asymmetric_binary_field_warns_that_bq_compares_bits(scifact_docs, dense_embedder):
    store = weaviate(index="flat")
    retriever = Retriever(store, ["binary", "binary:hamming"], embedder=dense_embedder)
    with pytest.warns(UserWarning, match=r"\['dense_binary_asym'\] are searched as Hamming"):
        retriever.index(scifact_docs[:20])
    # Both fields are BQ here: the same candidates, rescored the same way.
    assert top_ids(retriever, "binary") == top_ids(retriever, "binary:hamming")
    store.drop()
    store.close()


def test_shards_split_the_collection_and_replicas_need_nodes(reference, scifact_docs, dense_embedder):
    store = weaviate(index="flat", shards=3)
    retriever = Retriever(store, "dense", embedder=dense_embedder)
    retriever.index(scifact_docs)
    assert store._collection.config.get().sharding_config.desired_count == 3
    # every shard is searched: the exact results of one unsharded collection
    assert top_ids(retriever, "dense") == top_ids(reference, "dense")
    with pytest.raises(SchemaMismatchError, match="shards"):
        weaviate(store.collection, shards=2)
    store.drop()
    store.close()

    # one node cannot hold two copies: refused when the collection is made, nothing half-created
    lonely = weaviate(replicas=2)
    with pytest.raises(StoreError, match="replica"):
        Retriever(lonely, "dense", embedder=dense_embedder).index(scifact_docs[:5])
    assert lonely.schema is None and not lonely._client.collections.exists(lonely.name)
    lonely.close()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(StoreError, match="whole number"):
            weaviate(shards=bad)
