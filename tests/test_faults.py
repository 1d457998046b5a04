"""Fault tests: `ragembed index` killed with SIGKILL at random points, then run again, must leave
exactly the expected documents (none missing, none duplicated, none corrupted) in the embedded
Qdrant engine, qdrant-client's local mode, the saved memory store and a Weaviate server; a
Weaviate server restarted in the middle of an ingest must be survived by retrying, or reported
with the ids that are not written.

The kill points are random (seeded, printed on failure): the first run of each store is killed
while it embeds (the embeddings cache is cold then), the others after their first upsert, within
the time a clean run spends writing, optimizing and closing.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from unittest.mock import patch  # patch.dict: a scoped environment variable, nothing mocked

import pytest
from qdrant_server import ScriptServer as QdrantServer
from qdrant_server import session_server as qdrant_session_server
from qdrant_server import unavailable_reason as qdrant_unavailable
from weaviate_server import ScriptServer, session_server, unavailable_reason

from ragembed import Retriever
from ragembed.embedders.cache import EmbeddingCache
from ragembed.errors import PartialWriteError
from ragembed.sources import read_jsonl_documents
from ragembed.stores.uri import open_store

CORPUS_SIZE = 1500  # two upsert batches of 1,000: the upsert progress bar shows, and marks the writes
KILLS_PER_STORE = 2
WORDS = (
    "cell",
    "protein",
    "über",
    "naïve",
    "tumour",
    "ß-cell",
    "patients",
    "риск",
    "治療",
    "dose",
    "gene",
    "insulin",
    "vitamin",
    "infection",
    "mice",
    "🧬",
    "trial",
    "outcome",
    "receptor",
    "pathway",
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Short texts (cheap to embed) with odd unicode ids and metadata of several types."""
    rng = random.Random(9)
    path = tmp_path_factory.mktemp("faults") / "docs.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(
            json.dumps(
                {
                    "id": f"doc/{i:05d}·{rng.choice(WORDS)}",
                    "text": " ".join(rng.choices(WORDS, k=rng.randint(3, 14))) + f" #{i}",
                    "metadata": {"n": i, "even": i % 2 == 0, "tag": rng.choice(WORDS)},
                },
                ensure_ascii=False,
            )
            + "\n"
            for i in range(CORPUS_SIZE)
        )
    return path


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("embeddings-cache")


def index_command(corpus: Path, uri: str, collection: str) -> list[str]:
    keyword = "keyword" if uri.startswith("weaviate") else "bm25"  # Weaviate's own BM25, or sparse vectors
    return [
        sys.executable,
        "-m",
        "ragembed.cli",
        "index",
        str(corpus),
        "--store",
        uri,
        "--collection",
        collection,
        "--strategy",
        "dense",
        "--strategy",
        keyword,
    ]


def environment(cache_dir: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAGEMBED_CACHE_DIR": str(cache_dir), **extra}
    if unavailable_reason() is None and not os.environ.get("WEAVIATE_URL"):
        from ragembed.stores.weaviate.connection import server_binary

        env["RAGEMBED_WEAVIATE_BINARY"] = str(server_binary())  # the cache folder moved above
    return env


def run(command: list[str], env: dict[str, str], *, kill_after: tuple[str, float] | None = None) -> tuple[int, float]:
    """Run `command`; with kill_after=(marker, delay), SIGKILL it `delay` seconds after `marker`
    first shows on its stderr (tqdm's progress bars). Returns (exit code, seconds from the
    marker to the end, or 0.0)."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marker, delay = kill_after or ("upsert", None)
    seen = threading.Event()
    log = bytearray()

    def read() -> None:
        while chunk := process.stderr.read1(4096):
            log.extend(chunk)
            if marker.encode() in log:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen_at = None
    while process.poll() is None:
        if seen.wait(0.05):
            seen_at = seen_at or time.perf_counter()
            if delay is not None and time.perf_counter() - seen_at >= delay:
                process.send_signal(signal.SIGKILL)
                break
    code = process.wait(timeout=600)
    reader.join(timeout=10)
    if delay is None and code != 0:
        raise AssertionError(f"{' '.join(command[2:])} failed ({code}): {log.decode(errors='replace')[-2000:]}")
    return code, (time.perf_counter() - seen_at) if seen_at else 0.0


def assert_exactly_the_corpus(uri: str, collection: str, corpus: Path, cache_dir: Path, env: dict[str, str]) -> None:
    """Every document once, with its text and metadata intact, and findable by its own text."""
    from ragembed import DenseEmbedder

    expected = list(read_jsonl_documents(corpus))
    with patch.dict(os.environ, {k: env[k] for k in ("WEAVIATE_GRPC_PORT",) if k in env}):
        store = open_store(uri, collection)
        try:
            assert store.count() == len(expected)  # none missing, none duplicated
            stored = {d.id: d for d in store.get([d.id for d in expected])}
            assert set(stored) == {d.id for d in expected}
            for doc in expected:
                got = stored[doc.id]
                assert (got.text, dict(got.metadata)) == (doc.text, dict(doc.metadata)), doc.id
            retriever = Retriever(store, "dense", embedder=DenseEmbedder(cache=EmbeddingCache(cache_dir)))
            sample = random.Random(3).sample(expected, 25)
            for doc, hits in zip(sample, retriever.search_many([d.text for d in sample], k=3)):
                assert doc.id in [h.id for h in hits]  # its stored vector is its own
        finally:
            store.close()


def kill_and_rerun(uri: str, corpus: Path, cache_dir: Path, env: dict[str, str], seed: int) -> list[str]:
    """Kill the index command KILLS_PER_STORE times at random points, then run it to the end;
    returns what happened, for the failure message."""
    rng = random.Random(seed)
    collection = f"faults_{uuid.uuid4().hex[:8]}"
    command = index_command(corpus, uri, collection)
    history = []
    cold = not (cache_dir / "embeddings.sqlite").exists()
    if cold:  # kill while embedding: the cache must survive a SIGKILL between its writes
        delay = rng.uniform(2.0, 12.0)
        code, _ = run(command, env, kill_after=("embed documents", delay))
        history.append(f"killed {delay:.2f} s into embedding (exit {code})")
    # A clean run elsewhere measures how long writing takes; the kills fall inside that window.
    probe = f"{collection}_probe"
    _, writing = run(index_command(corpus, uri, probe), env)
    assert writing > 0, "the upsert progress bar never showed: no kill point can be placed"
    kills = 0
    for _ in range(3 * KILLS_PER_STORE):  # a run that ends before its kill point is drawn again
        delay = rng.uniform(0.0, writing)
        code, _ = run(command, env, kill_after=("upsert", delay))
        history.append(f"killed {delay:.2f} s of {writing:.2f} s into writing (exit {code})")
        kills += code == -signal.SIGKILL
        if kills == KILLS_PER_STORE:
            break
    assert kills == KILLS_PER_STORE, history
    run(command, env)
    history.append("ran to the end")
    assert_exactly_the_corpus(uri, collection, corpus, cache_dir, env)
    return history


@pytest.mark.slow
@pytest.mark.parametrize(
    "scheme, seed",
    [
        ("qdrant-edge", 1),
        ("qdrant-local", 2),
        ("memory", 3),
        # A killed client leaves its embedded server running: the rerun must stop it, not start a
        # second server on the same files.
        pytest.param(
            "weaviate-embedded",
            4,
            marks=pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason())),
        ),
    ],
)
def test_sigkill_during_indexing_then_rerun_leaves_exactly_the_documents(scheme, seed, corpus, cache_dir, tmp_path):
    history = kill_and_rerun(f"{scheme}:{tmp_path / 'store'}", corpus, cache_dir, environment(cache_dir), seed)
    print(scheme, history)


@pytest.mark.slow
@pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
def test_sigkill_during_indexing_into_a_weaviate_server(corpus, cache_dir):
    url, grpc_port = session_server()
    uri = url.replace("http://", "weaviate://").replace("https://", "weaviates://")
    env = environment(cache_dir, WEAVIATE_GRPC_PORT=str(grpc_port))
    print(kill_and_rerun(uri, corpus, cache_dir, env, seed=11))


@pytest.mark.slow
@pytest.mark.skipif(qdrant_unavailable() is not None, reason=str(qdrant_unavailable()))
def test_sigkill_during_indexing_into_a_qdrant_server(corpus, cache_dir):
    url, _ = qdrant_session_server()
    print(kill_and_rerun(url.replace("http://", "qdrant://"), corpus, cache_dir, environment(cache_dir), seed=12))


class KilledWeaviate(ScriptServer):
    """scripts/weaviate.sh's server with a kill -9 (its process id is in the data folder)."""

    def kill(self) -> None:
        from qdrant_server import kill_and_wait

        kill_and_wait(int((self.data / "weaviate.pid").read_text()))


def killable_server(engine: str, data: Path):
    """(server started on `data`, its store URI, the environment the index command needs)."""
    if engine == "qdrant":
        server = QdrantServer(data).start()
        return server, server.url.replace("http://", "qdrant://"), {}
    server = KilledWeaviate.on_free_ports(data)
    server.start()
    return server, server.url.replace("http://", "weaviate://"), {"WEAVIATE_GRPC_PORT": str(server.grpc_port)}


@pytest.mark.slow
@pytest.mark.parametrize(
    "engine",
    [
        pytest.param(
            "qdrant", marks=pytest.mark.skipif(qdrant_unavailable() is not None, reason=str(qdrant_unavailable()))
        ),
        pytest.param(
            "weaviate", marks=pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
        ),
    ],
)
def test_a_server_killed_mid_ingest_then_restarted_keeps_what_it_acknowledged(tmp_path, corpus, cache_dir, engine):
    """kill -9 of the server itself while `ragembed index` writes: the command completes (its
    writes retried) or exits 2 naming the unwritten ids; the server restarted on the same storage
    replays its write-ahead log, and running the command again leaves exactly the corpus."""
    server, uri, extra = killable_server(engine, tmp_path / engine)
    try:
        env = environment(cache_dir, **extra)
        run(index_command(corpus, uri, "probe"), env)  # warms the embeddings cache
        process = subprocess.Popen(
            index_command(corpus, uri, "killed"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 300
        with patch.dict(os.environ, extra):
            while time.monotonic() < deadline:
                with contextlib.suppress(Exception):
                    if open_store(uri, "killed").count() >= 300:  # mid-ingest
                        break
                time.sleep(0.05)
        server.kill()
        time.sleep(2)
        server.start()  # same storage, same ports
        _, stderr = process.communicate(timeout=600)
        print(f"{engine} killed at >= 300 of {CORPUS_SIZE} documents: the command exited {process.returncode}")
        assert process.returncode in (0, 2), stderr[-2000:]
        assert "Traceback" not in stderr
        if process.returncode == 2:
            assert "not (or not surely) written" in stderr
        run(index_command(corpus, uri, "killed"), env)
        if engine == "qdrant":  # its write-ahead log covers the vector index too
            assert_exactly_the_corpus(uri, "killed", corpus, cache_dir, env)
            return
        # Weaviate 1.35.2 acknowledges a batch before its indexes are durable: after kill -9,
        # documents it acknowledged are counted, but some are missing from the vector index and
        # (in some runs, 2-26 of 1,500) from the id index that reads by id go through, and inserting them
        # again does not index an unchanged object. So the documented recovery after a Weaviate
        # crash is `ragembed index --recreate` (docs/weaviate.md); a plain rerun is held to the
        # count only (none lost, none duplicated), and what its reads miss is printed.
        with patch.dict(os.environ, extra):
            store = open_store(uri, "killed")
            try:
                assert store.count() == CORPUS_SIZE
                unread = CORPUS_SIZE - len(store.get([d.id for d in read_jsonl_documents(corpus)]))
            finally:
                store.close()
            print(
                f"after a plain rerun, {unread} of {CORPUS_SIZE} documents did not read back by id and "
                f"{unsearchable(uri, 'killed', corpus, cache_dir)} were not found by their own text"
            )
        run([*index_command(corpus, uri, "killed"), "--recreate"], env)
        assert_exactly_the_corpus(uri, "killed", corpus, cache_dir, env)
    finally:
        server.stop()


def unsearchable(uri: str, collection: str, corpus: Path, cache_dir: Path) -> int:
    from ragembed import DenseEmbedder

    docs = list(read_jsonl_documents(corpus))
    with Retriever(open_store(uri, collection), "dense", embedder=DenseEmbedder(cache=EmbeddingCache(cache_dir))) as r:
        return sum(
            d.id not in [h.id for h in hits] for d, hits in zip(docs, r.search_many([d.text for d in docs], k=3))
        )


@pytest.mark.slow
@pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
@pytest.mark.parametrize("downtime_s, retry_s", [(0.0, 30.0), (15.0, 3.0)])
def test_a_weaviate_restart_mid_ingest_is_retried_or_reported_by_id(tmp_path, corpus, cache_dir, downtime_s, retry_s):
    """A restart within retry_s is ridden out by the retries; a longer outage ends in a PartialWriteError
    whose ids are exactly what is missing, and indexing those again completes the collection."""
    from ragembed import DenseEmbedder
    from ragembed.stores.weaviate import WeaviateStore

    docs = list(read_jsonl_documents(corpus))
    embedder = DenseEmbedder(cache=EmbeddingCache(cache_dir))
    embedder.embed_documents([d.text for d in docs])  # warm: the ingest itself is what is timed
    server = ScriptServer.on_free_ports(tmp_path / "data")
    server.start()
    try:
        store = WeaviateStore(server.url, "Restarted", grpc_port=server.grpc_port, timeout_s=10, retry_s=retry_s)
        retriever = Retriever(store, "dense", embedder=embedder)
        retriever.index(docs[:1])  # the collection exists before the outage

        def restart() -> None:
            while store.count() < 400:  # mid-ingest
                time.sleep(0.01)
            server.stop()
            time.sleep(downtime_s)
            server.start()

        restarter = threading.Thread(target=restart)
        restarter.start()
        try:
            retriever.index(docs)
            outcome = "retried"
        except PartialWriteError as exc:
            outcome = f"reported: {exc}"[:400]
            restarter.join()
            present = {d.id for d in store.get([d.id for d in docs])}
            assert {d.id for d in docs} - present <= set(exc.failed)  # every missing id is named
            print(
                f"outage: {len(exc.failed)} of {len(docs)} ids reported not written, "
                f"{len({d.id for d in docs} - present)} missing"
            )
            retriever.index([d for d in docs if d.id in exc.failed])
        restarter.join()
        assert store.count() == len(docs)
        assert {d.id for d in store.get([d.id for d in docs])} == {d.id for d in docs}
        assert outcome.startswith("retried" if retry_s > downtime_s else "reported"), outcome
        store.close()
    finally:
        server.stop()


@pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
def test_an_embedded_folder_in_use_by_a_live_process_is_refused(tmp_path):
    from ragembed.errors import StoreError
    from ragembed.stores.weaviate import WeaviateStore

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time\nfrom ragembed.stores.weaviate import WeaviateStore\n"
                f"s = WeaviateStore.embedded({str(tmp_path / 'wv')!r}, 'Docs')\n"
                "print('up', flush=True)\ntime.sleep(120)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        assert holder.stdout.readline().strip() == "up"
        with pytest.raises(StoreError, match=f"belongs to process {holder.pid}, which is still running"):
            WeaviateStore.embedded(tmp_path / "wv", "Docs")
    finally:
        holder.kill()
        holder.wait()
    store = WeaviateStore.embedded(tmp_path / "wv", "Docs")  # its orphaned server is stopped first
    assert store.count() == 0
    store.close()
