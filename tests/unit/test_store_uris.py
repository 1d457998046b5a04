"""Store URIs: each scheme opens its store (the engines that run in-process, for real), and a
mistyped one is refused with the schemes there are."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragembed.errors import InvalidInputError
from ragembed.stores.memory import MemoryStore
from ragembed.stores.qdrant import QdrantEdgeStore, QdrantStore
from ragembed.stores.uri import SCHEMES, open_store


def test_memory_uris_open_a_memory_store_in_the_collections_folder(tmp_path: Path) -> None:
    with open_store("memory") as store:
        assert isinstance(store, MemoryStore) and store.path is None
    with open_store(f"memory:{tmp_path}", "docs") as store:
        assert isinstance(store, MemoryStore) and store.path == tmp_path / "docs"


def test_in_process_qdrant_uris_open_the_engine_they_name(tmp_path: Path) -> None:
    with open_store(f"qdrant-edge:{tmp_path / 'edge'}", "docs") as store:
        assert isinstance(store, QdrantEdgeStore) and store.collection == "docs"
    with open_store("qdrant-local:", "docs") as store:
        assert isinstance(store, QdrantStore) and store.local


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("", "non-empty string"),
        ("qdrant-edge:", "needs a folder"),
        ("weaviate-embedded:", "needs a folder"),
        ("qdrant://", "name the server"),
        ("weaviate://", "name the server"),
        ("qdrnt://localhost:6333", "unknown store URI"),
        ("postgres://db", "unknown store URI"),
    ],
)
def test_bad_uris_are_refused_naming_the_fix(uri: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as caught:
        open_store(uri)
    if "unknown" in message:
        assert all(scheme in str(caught.value) for scheme in SCHEMES)


@pytest.mark.parametrize("name", ["../up", "a/b", "a\\b", ".hidden", "", "nul\0"])
def test_collection_names_that_are_not_plain_folder_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInputError, match="collection name"):
        open_store("memory", name)
