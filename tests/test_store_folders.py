"""On-disk stores never delete what a user owns: each writes only in a folder it created and
recognises by its marker, refuses any other folder with an error naming it, takes a lock so a
second writer is refused by name, and survives saves killed at any point. Real folders, real
engines (the memory store, Qdrant Edge, Qdrant local mode, embedded Weaviate), real processes;
the permission cases run in a process without root's override of file permissions."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import cli
from weaviate_server import unavailable_reason

from ragembed import Document, MemoryStore, Retriever
from ragembed.errors import StoreError
from ragembed.stores import folders
from ragembed.stores.uri import open_store

DOCS = [
    Document("a", "Bees pollinate flowering plants."),
    Document("b", "Bees make honey from nectar."),
    Document("c", "Rust has ownership and borrowing."),
]
FOLDER_SCHEMES = ["memory", "qdrant-edge", "qdrant-local"]  # each takes bm25 with no model to load
WEAVIATE = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))


def index(uri: str, docs=DOCS, collection: str = "docs") -> None:
    with Retriever(uri, "bm25", collection=collection) as retriever:
        retriever.index(docs)


def count(uri: str, collection: str = "docs") -> int:
    store = open_store(uri, collection)
    try:
        return store.count()
    finally:
        store.close()


def store_folder(scheme: str, root: Path, collection: str = "docs") -> Path:
    """The folder a store keeps: DIR/<collection> (memory, Edge) or DIR itself."""
    return root / collection if scheme in ("memory", "qdrant-edge") else root


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- 1. a user's folder with the collection's name ------------------------------------------------
@pytest.mark.parametrize("scheme", FOLDER_SCHEMES)
def test_a_users_folder_named_like_the_collection_is_refused_and_untouched(tmp_path, scheme):
    mine = store_folder(scheme, tmp_path / "p")
    (mine / "notes").mkdir(parents=True)
    (mine / "README.md").write_text("hi")
    (mine / "notes" / "todo.txt").write_text("keep me")
    before = snapshot(mine)
    with pytest.raises(StoreError, match=r"already holds files ragembed did not write \(README.md, notes\)"):
        index(f"{scheme}:{tmp_path / 'p'}")
    assert snapshot(mine) == before


@WEAVIATE
def test_embedded_weaviate_refuses_a_users_folder(tmp_path):
    from ragembed.stores.weaviate import WeaviateStore

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "thesis.tex").write_text("chapter 1")
    with pytest.raises(StoreError, match="thesis.tex"):
        WeaviateStore.embedded(tmp_path / "data", "Docs")
    assert sorted(os.listdir(tmp_path / "data")) == ["thesis.tex"]
    index(f"qdrant-edge:{tmp_path / 'edge'}")
    with pytest.raises(StoreError, match=rf"qdrant-edge: qdrant-edge:{tmp_path / 'edge'}"):
        WeaviateStore.embedded(tmp_path / "edge", "Docs")
    assert count(f"qdrant-edge:{tmp_path / 'edge'}") == len(DOCS)


# --- 2. the CLI indexing the folder it would write -----------------------------------------------
@pytest.mark.parametrize("scheme", ["memory", "qdrant-edge"])
def test_the_cli_never_replaces_the_folder_it_indexes(tmp_path, scheme):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("guide to the bees")
    args = ["index", "docs", "--store", f"{scheme}:.", "--collection", "docs", "--strategy", "bm25"]
    done = cli(*args, cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "ragembed: error: docs already holds files ragembed did not write (guide.md)" in done.stderr
    assert "Traceback" not in done.stderr
    assert os.listdir(tmp_path / "docs") == ["guide.md"]
    assert (tmp_path / "docs" / "guide.md").read_text() == "guide to the bees"


# --- 3. another store's folder under a mistyped scheme ------------------------------------------
@pytest.mark.parametrize("written, opened", list(itertools.permutations(FOLDER_SCHEMES, 2)))
def test_a_folder_another_store_wrote_is_refused_with_the_uri_that_opens_it(tmp_path, written, opened):
    root = tmp_path / "idx"
    index(f"{written}:{root}")
    before = snapshot(root)
    with pytest.raises(StoreError, match=rf"{written}:{root}"):
        index(f"{opened}:{root}", [Document("x", "a new document")])
    assert snapshot(root) == before
    assert count(f"{written}:{root}") == len(DOCS)


# --- 4. two writers -------------------------------------------------------------------------------
def test_a_second_writer_in_the_same_process_is_refused_by_name(tmp_path):
    uri = f"memory:{tmp_path}"
    first = Retriever(uri, "bm25")
    first.index(DOCS[:2])
    with pytest.raises(StoreError, match=rf"open for writing by process {os.getpid()} \(this process"):
        Retriever(uri, "bm25")
    first.index(DOCS[2:])
    first.close()
    with Retriever(uri, "bm25") as again:  # free once the first is closed
        assert again.count() == 3


def test_a_collection_created_by_two_stores_at_once_loses_nothing(tmp_path):
    """Both open a collection that does not exist yet; the one that writes second is refused
    instead of replacing the first one's documents when it is closed."""
    first, second = MemoryStore(tmp_path / "docs"), MemoryStore(tmp_path / "docs")
    with Retriever(first, "bm25") as retriever:
        retriever.index(DOCS)
    with pytest.raises(StoreError, match="after this one was opened there"):
        Retriever(second, "bm25").index([Document("x", "other text")])
    second.close()
    assert count(f"memory:{tmp_path}") == 3


HOLD = """
import sys, time
from ragembed import Document, Retriever
r = Retriever(sys.argv[1], "bm25", collection="docs")
r.index([Document("held", "a document the other process writes")])
print("holding", flush=True)
sys.stdin.readline()
r.close()
"""


@pytest.mark.parametrize("scheme", FOLDER_SCHEMES)
def test_a_second_writer_process_is_refused_naming_the_holder(tmp_path, scheme):
    uri = f"{scheme}:{tmp_path / 'idx'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, uri],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(StoreError, match=f"process {holder.pid}|open in another process"):
            index(uri)
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    assert count(uri) == 1  # the holder's document, and nothing of the refused writer's


# --- saves killed at any point ------------------------------------------------------------------
def test_a_save_killed_before_its_commit_leaves_the_previous_copy(tmp_path):
    uri, folder = f"memory:{tmp_path}", tmp_path / "docs"
    index(uri, DOCS[:2])
    committed = folders.read_marker(folder)["data"]
    # What a save killed while writing its new data folder leaves: a data folder nobody names.
    stray = folder / ("data-" + "0" * 32)
    shutil.copytree(folder / committed, stray)
    (stray / "documents.jsonl").write_text('{"id": "half')
    store = MemoryStore(folder)
    assert store.count() == 2 and not stray.exists()
    store.close()


def test_a_save_killed_after_its_commit_keeps_the_new_copy(tmp_path):
    uri, folder = f"memory:{tmp_path}", tmp_path / "docs"
    index(uri, DOCS[:2])
    old = folder / folders.read_marker(folder)["data"]
    kept = tmp_path / "old-copy"
    shutil.copytree(old, kept)
    index(uri, DOCS[2:])
    shutil.copytree(kept, old)  # the old data folder, as a save killed before removing it leaves it
    store = MemoryStore(folder)
    assert store.count() == 3 and not old.exists()
    store.close()


def test_a_store_saved_by_an_earlier_ragembed_is_read_then_moved_to_the_new_layout(tmp_path):
    """Layout 1: the data files directly in the collection folder."""
    folder = tmp_path / "docs"
    index(f"memory:{tmp_path}")
    data = folder / folders.read_marker(folder)["data"]
    legacy = tmp_path / "legacy"
    shutil.copytree(data, legacy)
    shutil.rmtree(folder)
    legacy.rename(folder)
    assert folders.recognise(folder) == "memory"
    with Retriever(f"memory:{tmp_path}", "bm25", collection="docs") as retriever:
        assert [h.id for h in retriever.search("honey", k=1)] == ["b"]
        retriever.index([Document("d", "Honey bees dance.")])
    assert not (folder / "schema.json").exists() and folders.read_marker(folder)["store"] == "memory"
    assert count(f"memory:{tmp_path}") == 4


# --- the file system ----------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", FOLDER_SCHEMES)
def test_a_file_where_the_store_folder_belongs_is_refused(tmp_path, scheme):
    target = store_folder(scheme, tmp_path / "idx")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("my notes")
    with pytest.raises(StoreError, match="is a file, not a folder"):
        index(f"{scheme}:{tmp_path / 'idx'}")
    assert target.read_text() == "my notes"


@pytest.mark.parametrize("junk", ["not json at all", '["a", "list"]', '{"store": 7}', '{"some": "other program"}'])
def test_a_marker_that_is_not_ragembeds_is_refused(tmp_path, junk):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / folders.MARKER).write_text(junk)
    for scheme in ("memory", "qdrant-edge"):
        with pytest.raises(StoreError, match="is not a ragembed marker"):
            index(f"{scheme}:{tmp_path}")
    assert (tmp_path / "docs" / folders.MARKER).read_text() == junk


@pytest.mark.parametrize("damage", ["not json", '{"format": 1, "schema": {"fields": [{"name": 3}]}}', "[]"])
def test_damaged_metadata_is_a_store_error_and_is_left_as_it_is(tmp_path, damage):
    index(f"memory:{tmp_path / 'm'}")
    index(f"qdrant-edge:{tmp_path / 'e'}")
    memory = tmp_path / "m" / "docs"
    damaged = [
        memory / folders.read_marker(memory)["data"] / "schema.json",
        tmp_path / "e" / "docs" / "ragembed-schema.json",
    ]
    for path, uri in zip(damaged, (f"memory:{tmp_path / 'm'}", f"qdrant-edge:{tmp_path / 'e'}")):
        path.write_text(damage)
        with pytest.raises(StoreError, match="damaged"):
            count(uri)
        assert path.read_text() == damage


def test_junk_in_a_qdrant_local_folder_is_a_store_error(tmp_path):
    (tmp_path / "l").mkdir()
    (tmp_path / "l" / "meta.json").write_text('{"collections": "junk"}')
    with pytest.raises(StoreError):
        index(f"qdrant-local:{tmp_path / 'l'}")


NO_OVERRIDE = [
    "setpriv",
    "--bounding-set=-dac_override,-dac_read_search,-fowner",
    "--inh-caps=-dac_override,-dac_read_search,-fowner",
]
PROBE = """
import json, sys
from ragembed import Document, Retriever
from ragembed.errors import RagembedError
out = {}
try:
    r = Retriever(sys.argv[1], "bm25", collection="docs")
    out["search"] = [h.id for h in r.search("honey", k=1)]
    try:
        r.index([Document("x", "a new document")])
        out["index"] = "written"
    except RagembedError as exc:
        out["index"] = f"{type(exc).__name__}: {exc}"
    r.close()
except RagembedError as exc:
    out["open"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def as_ordinary_user(uri: str) -> dict:
    """PROBE in a process that obeys file permissions (root: without its override capabilities)."""
    prefix = NO_OVERRIDE if os.geteuid() == 0 else []
    if prefix and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv (util-linux) to drop root's permission override")
    done = subprocess.run(
        [*prefix, sys.executable, "-c", PROBE, uri],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("scheme", FOLDER_SCHEMES)
def test_a_read_only_store_serves_searches_where_the_engine_allows_it(tmp_path, scheme):
    root = tmp_path / "idx"
    index(f"{scheme}:{root}")
    before = snapshot(root)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        result = as_ordinary_user(f"{scheme}:{root}")
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    if scheme == "memory":  # numpy files: readable without writing
        assert result["search"] == ["b"]
        assert result["index"].startswith("StoreError: the memory store at") and "read-only" in result["index"]
    else:  # both Qdrant engines open their files for writing even to search
        assert result["open"].startswith("StoreError: cannot write") and "writable" in result["open"]
    assert snapshot(root) == before


@pytest.mark.parametrize("scheme", FOLDER_SCHEMES)
def test_a_folder_that_cannot_be_read_is_a_store_error(tmp_path, scheme):
    root = tmp_path / "idx"
    index(f"{scheme}:{root}")
    locked = store_folder(scheme, root)
    locked.chmod(0o000)
    try:
        result = as_ordinary_user(f"{scheme}:{root}")
    finally:
        locked.chmod(0o755)
    assert result["open"].startswith("StoreError") and "ermission" in result["open"], result
    assert count(f"{scheme}:{root}") == len(DOCS)


ON_DISK_SCHEMES = [*FOLDER_SCHEMES, "weaviate-embedded"]  # weaviate-embedded refuses before it needs its binary


def open_then_close(uri: str) -> None:
    open_store(uri, "docs").close()


@pytest.mark.parametrize("below", ["", "/sub"])
@pytest.mark.parametrize("scheme", ON_DISK_SCHEMES)
def test_a_file_given_as_the_store_folder_is_refused(tmp_path, scheme, below):
    """`memory:FILE`: the store's folder would be FILE/<collection> (or FILE itself, or FILE/sub)."""
    mine = tmp_path / "notes.txt"
    mine.write_text("my notes")
    with pytest.raises(StoreError, match=rf"^{mine} is a file, not a folder[;,]"):
        open_then_close(f"{scheme}:{mine}{below}")
    if scheme in FOLDER_SCHEMES:  # refused before anything is embedded or written
        with pytest.raises(StoreError, match="is a file, not a folder"):
            index(f"{scheme}:{mine}{below}")
    assert mine.read_text() == "my notes"
    assert os.listdir(tmp_path) == ["notes.txt"]


LOCKED_PROBE = """
import sys
from ragembed.errors import RagembedError
from ragembed.stores.uri import open_store
try:
    open_store(sys.argv[1], "docs").close()
    print("opened")
except RagembedError as exc:
    print(f"{type(exc).__name__}: {exc}")
"""


def run_as_ordinary_user(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`args` in a process that obeys file permissions (root: without its override capabilities)."""
    prefix = NO_OVERRIDE if os.geteuid() == 0 else []
    if prefix and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv (util-linux) to drop root's permission override")
    return subprocess.run(
        [*prefix, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


@pytest.mark.parametrize("scheme", ON_DISK_SCHEMES)
def test_a_folder_above_the_store_that_cannot_be_read_is_a_store_error(tmp_path, scheme):
    """The folder holding the store's folder has mode 000: `memory:DIR` (DIR/docs), `qdrant-local:DIR/sub`."""
    locked = tmp_path / "locked"
    uri = f"{scheme}:{locked}" if scheme in folders.PER_COLLECTION else f"{scheme}:{locked / 'sub'}"
    if scheme in FOLDER_SCHEMES:
        index(uri)
    else:
        locked.mkdir()
    before = snapshot(locked)
    locked.chmod(0o000)
    try:
        done = run_as_ordinary_user([sys.executable, "-c", LOCKED_PROBE, uri], tmp_path)
    finally:
        locked.chmod(0o755)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stdout.startswith(f"StoreError: cannot read the folder {locked}: Permission denied;"), done.stdout
    assert "check its permissions" in done.stdout.lower()
    assert snapshot(locked) == before
    if scheme in FOLDER_SCHEMES:
        assert count(uri) == len(DOCS)


INDEX_ARGS = ["index", "docs", "--collection", "docs", "--strategy", "bm25"]
CLI_INDEX = [sys.executable, "-m", "ragembed.cli", *INDEX_ARGS]


@pytest.mark.parametrize("scheme", ["memory", "qdrant-edge"])
def test_the_cli_refuses_a_file_as_the_store_folder_with_exit_2(tmp_path, scheme):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("guide to the bees")
    (tmp_path / "plainfile").write_text("my notes")
    done = cli(*INDEX_ARGS, "--store", f"{scheme}:plainfile", cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "ragembed: error: plainfile is a file, not a folder; the store keeps its data in the folder "
        "plainfile/docs, which cannot be made inside a file. Give the store the path of a folder (a new "
        "one is created), or move the file away"
    )
    assert (tmp_path / "plainfile").read_text() == "my notes"
    assert sorted(os.listdir(tmp_path)) == ["docs", "plainfile"]


@pytest.mark.parametrize("scheme", ["memory", "qdrant-edge"])
def test_the_cli_refuses_a_store_folder_it_cannot_read_with_exit_2(tmp_path, scheme):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("guide to the bees")
    index(f"{scheme}:{tmp_path / 'idx'}")
    before = snapshot(tmp_path / "idx")
    (tmp_path / "idx").chmod(0o000)
    try:
        done = run_as_ordinary_user([*CLI_INDEX, "--store", f"{scheme}:idx"], tmp_path)
    finally:
        (tmp_path / "idx").chmod(0o755)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "ragembed: error: cannot read the folder idx: Permission denied; the store's folder idx/docs is "
        "inside it. Check its permissions (this process must be able to read and enter it), or choose "
        "another folder"
    )
    assert snapshot(tmp_path / "idx") == before
    assert count(f"{scheme}:{tmp_path / 'idx'}") == len(DOCS)


# --- a mistyped collection or folder ------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["memory", "qdrant-edge", "qdrant-local"])
def test_a_mistyped_collection_names_the_store_and_the_collections_there(tmp_path, scheme):
    index(f"{scheme}:{tmp_path / 'idx'}")
    with pytest.raises(StoreError, match=r"does not exist yet.*collections there: docs"):
        Retriever(f"{scheme}:{tmp_path / 'idx'}", "bm25", collection="dcos").search("honey")
    with pytest.raises(StoreError, match=r"does not exist yet.*no collections there"):
        Retriever(f"{scheme}:{tmp_path / 'nowhere'}", "bm25", collection="docs").search("honey")


def test_the_cli_names_the_collection_it_could_not_find(tmp_path):
    index(f"memory:{tmp_path / 'idx'}")
    args = ["search", "honey", "--store", "memory:idx", "--collection", "dcos", "--strategy", "bm25"]
    done = cli(*args, cwd=tmp_path, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "idx/dcos" in done.stderr and "collections there: docs" in done.stderr


def test_saving_a_memory_store_elsewhere_follows_the_same_rules(tmp_path):
    store = MemoryStore()
    with Retriever(store, "bm25") as retriever:
        retriever.index(DOCS)
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "data.csv").write_text("1,2")
        with pytest.raises(StoreError, match="data.csv"):
            store.save(tmp_path / "mine")
        store.save(tmp_path / "copy")
    assert MemoryStore.load(tmp_path / "copy").count() == 3
    assert os.listdir(tmp_path / "mine") == ["data.csv"]
