"""Real 3-node clusters on loopback (scripts/qdrant.sh cluster 3, scripts/weaviate.sh cluster 3),
holding SciFact abstracts: a sharded, replicated collection answers exactly like one node, a
node killed with SIGKILL during an ingest or under search load costs no document and no query,
and a restarted node rejoins with every document."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from qdrant_server import Cluster, session_server
from qdrant_server import unavailable_reason as qdrant_unavailable

from ragembed import Retriever
from ragembed.evaluation import load_beir
from ragembed.stores.qdrant import QdrantStore

pytestmark = [pytest.mark.cluster, pytest.mark.server]
QDRANT = pytest.mark.skipif(qdrant_unavailable() is not None, reason=str(qdrant_unavailable()))
CORPUS, QUERIES = 1000, 50
QDRANT_STRATEGIES = ["dense", "int8", "binary", "binary:hamming", "matryoshka:64", "funnel:64", "bm25", "hybrid",
                     "colbert", "colbert+dense"]


@pytest.fixture(scope="module")
def scifact(scifact_dir):
    data = load_beir(scifact_dir, "test")
    return data.corpus[:CORPUS], list(data.queries.values())[:QUERIES]


@pytest.fixture(scope="module")
def qdrant_cluster():
    if qdrant_unavailable():
        pytest.skip(qdrant_unavailable())
    folder = Path(tempfile.mkdtemp(prefix="ragembed-qdrant-cluster-"))
    cluster = Cluster(folder).start(3)
    yield cluster
    cluster.stop()


def embedders(dense_embedder, bm25_embedder, colbert_embedder) -> dict:
    return {"embedder": dense_embedder, "sparse_embedder": bm25_embedder, "multivector_embedder": colbert_embedder}


def answers(retriever: Retriever, queries: list[str], strategy: str) -> list[list[tuple[str, float]]]:
    return [[(h.id, h.score) for h in hits] for hits in retriever.search_many(queries, k=10, strategy=strategy)]


def differences(got, expected) -> list[int]:
    """The queries whose ids, order or scores (within 1e-5) differ."""
    return [q for q, (mine, reference) in enumerate(zip(got, expected))
            if [i for i, _ in mine] != [i for i, _ in reference]
            or any(abs(a - b) > 1e-5 * max(1.0, abs(b)) for (_, a), (_, b) in zip(mine, reference))]


def never_worse(got, expected) -> bool:
    """Each rank's score at least the reference's: what rescoring a superset of its candidates gives."""
    return all(len(mine) == len(reference) and all(a >= b - 1e-6 for (_, a), (_, b) in zip(mine, reference))
               for mine, reference in zip(got, expected))


@QDRANT
def test_a_sharded_replicated_collection_answers_exactly_like_one_node(qdrant_cluster, scifact, dense_embedder,
                                                                      bm25_embedder, colbert_embedder):
    """6 shards x 2 replicas on 3 nodes against one unsharded collection, queried through each node.
    binary:hamming is the one exception, and says so in docs/qdrant.md: Hamming scores tie often,
    and at a tie on the oversampled candidate cut-off each shard keeps its own tied candidates, so
    the rescored answer can hold a better document than one node's, never a worse one."""
    docs, queries = scifact
    kinds = embedders(dense_embedder, bm25_embedder, colbert_embedder)
    single = Retriever(QdrantStore("cluster_reference", url=session_server()[0]), QDRANT_STRATEGIES, **kinds)
    single.drop()
    single.index(docs)
    sharded = QdrantStore("cluster_sharded", url=qdrant_cluster.urls[1], shard_number=6, replication_factor=2)
    sharded.drop()
    Retriever(sharded, QDRANT_STRATEGIES, **kinds).index(docs)
    differing, hamming = {}, []
    for strategy in QDRANT_STRATEGIES:
        expected = answers(single, queries, strategy)
        for node, url in qdrant_cluster.urls.items():
            got = answers(Retriever(QdrantStore("cluster_sharded", url=url), QDRANT_STRATEGIES, **kinds), queries,
                          strategy)
            if strategy == "binary:hamming":
                assert never_worse(got, expected), node
                hamming.append(len(differences(got, expected)))
            elif differences(got, expected):
                differing[(strategy, node)] = differences(got, expected)
    print(f"binary:hamming: {hamming} of {len(queries)} queries differ per node (all never worse)")
    assert not differing, differing


def write_corpus(docs, path: Path) -> Path:
    import json

    with open(path, "w", encoding="utf-8") as out:
        for d in docs:
            out.write(json.dumps({"id": d.id, "text": d.text, "metadata": dict(d.metadata)}, ensure_ascii=False) + "\n")
    return path


def replicas_active(url: str, collection: str) -> bool:
    """Every replica of every shard of `collection` is Active, as the node at `url` sees it."""
    from qdrant_client import QdrantClient

    client = QdrantClient(url=url)
    try:
        info = client.collection_cluster_info(collection)
        states = [s.state for s in info.local_shards] + [s.state for s in info.remote_shards]
        return bool(states) and all(str(state).lower().endswith("active") for state in states)
    finally:
        client.close()


def wait_until_active(cluster: Cluster, collection: str, timeout_s: float = 300) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if all(replicas_active(url, collection) for url in cluster.urls.values()):
            return time.monotonic() - started
        time.sleep(0.5)
    raise TimeoutError(f"the replicas of {collection} did not all become active in {timeout_s} s")


def assert_holds_exactly(url: str, collection: str, docs) -> None:
    store = QdrantStore(collection, url=url)
    try:
        assert store.count() == len(docs)
        stored = {d.id: d for d in store.get([d.id for d in docs])}
        assert set(stored) == {d.id for d in docs}
        for doc in docs:
            assert (stored[doc.id].text, dict(stored[doc.id].metadata)) == (doc.text, dict(doc.metadata)), doc.id
    finally:
        store.close()


@QDRANT
def test_a_node_killed_during_ragembed_index_costs_no_document(qdrant_cluster, scifact, tmp_path, dense_embedder,
                                                              bm25_embedder):
    """kill -9 of a node (not the one the command talks to) while `ragembed index` writes into a
    collection of 6 shards x 2 replicas: the command completes (the surviving replicas take the
    writes) or names every unwritten id; once the node is back and its replicas recovered, the
    collection holds exactly the corpus, read through every node."""
    docs, _ = scifact
    collection = "cluster_ingest"
    store = QdrantStore(collection, url=qdrant_cluster.urls[1], shard_number=6, replication_factor=2)
    store.drop()
    Retriever(store, ["dense", "bm25"], embedder=dense_embedder, sparse_embedder=bm25_embedder).index(docs[:10])
    corpus = write_corpus(docs, tmp_path / "corpus.jsonl")
    command = [sys.executable, "-m", "ragembed.cli", "index", str(corpus), "--store",
               qdrant_cluster.urls[1].replace("http://", "qdrant://"), "--collection", collection,
               "--strategy", "dense", "--strategy", "bm25"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    while store.count() < 300 and process.poll() is None:  # mid-ingest
        time.sleep(0.02)
    written_at_kill = store.count()
    qdrant_cluster.kill(3)
    _, stderr = process.communicate(timeout=900)
    print(f"node 3 killed at {written_at_kill} of {len(docs)} documents; the command exited {process.returncode}")
    assert process.returncode in (0, 2) and "Traceback" not in stderr, stderr[-2000:]
    if process.returncode == 2:
        assert "not (or not surely) written" in stderr
    qdrant_cluster.restart(3)
    print(f"replicas active again {wait_until_active(qdrant_cluster, collection):.1f} s after the restart")
    if process.returncode == 2:
        subprocess.run(command, check=True, capture_output=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    for url in qdrant_cluster.urls.values():
        assert_holds_exactly(url, collection, docs)


@QDRANT
def test_a_node_killed_under_search_load_fails_no_query(qdrant_cluster, scifact, dense_embedder, bm25_embedder):
    """8 clients search (dense and hybrid) through nodes 1 and 2 while node 3 is killed and
    restarted: with replication 2 no query fails and no answer differs from the healthy cluster's."""
    docs, queries = scifact
    collection = "cluster_load"
    strategies = ["dense", "hybrid"]
    store = QdrantStore(collection, url=qdrant_cluster.urls[1], shard_number=6, replication_factor=2)
    store.drop()
    Retriever(store, strategies, embedder=dense_embedder, sparse_embedder=bm25_embedder).index(docs)
    wait_until_active(qdrant_cluster, collection)
    healthy = {s: [[h.id for h in hits] for hits in Retriever(store, strategies, embedder=dense_embedder,
                                                                sparse_embedder=bm25_embedder).search_many(queries, k=10, strategy=s)]
               for s in strategies}
    phase = ["healthy"]
    latencies: dict[str, list[float]] = {"healthy": [], "node down": [], "rejoined": []}
    errors, differing = [], []
    stop = threading.Event()

    def client(number: int) -> None:
        retriever = Retriever(QdrantStore(collection, url=qdrant_cluster.urls[1 + number % 2]), strategies,
                              embedder=dense_embedder, sparse_embedder=bm25_embedder)
        turn = number
        while not stop.is_set():
            strategy, q = strategies[turn % 2], turn % len(queries)
            turn += 1
            started, now = time.perf_counter(), phase[0]
            try:
                hits = retriever.search(queries[q], k=10, strategy=strategy)
            except Exception as exc:  # noqa: BLE001 - any failure is what this test counts
                errors.append(f"{now}: {type(exc).__name__}: {exc}"[:300])
                continue
            latencies[now].append(1000 * (time.perf_counter() - started))
            if [h.id for h in hits] != healthy[strategy][q]:
                differing.append((now, strategy, q))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    time.sleep(5)
    qdrant_cluster.kill(3)
    phase[0] = "node down"
    time.sleep(10)
    qdrant_cluster.restart(3)
    wait_until_active(qdrant_cluster, collection)
    phase[0] = "rejoined"
    time.sleep(5)
    stop.set()
    for t in threads:
        t.join()
    for name, values in latencies.items():
        if values:
            values.sort()
            print(f"{name}: {len(values)} searches, p50 {statistics.median(values):.1f} ms, "
                  f"p95 {values[int(0.95 * (len(values) - 1))]:.1f} ms")
    assert not errors, errors[:5]
    assert not differing, differing[:5]
    assert all(latencies.values())
