"""Store URIs, shared by the CLI and the Python API.

    memory          the exact in-memory store, gone when the process ends
    memory:DIR      the exact in-memory store, loaded from DIR/<collection> if it is there and
                    saved there on close (so `ragembed index` and `ragembed search` share it)

Later adapters add their schemes here (Qdrant, Weaviate).
"""

from __future__ import annotations

from pathlib import Path

from ragembed.errors import InvalidInputError
from ragembed.stores.base import VectorStore

SCHEMES = ["memory", "memory:DIR"]


def open_store(uri: str, collection: str = "default") -> VectorStore:
    """Open the collection `collection` of the store that `uri` names."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInputError(f"a store URI is a non-empty string such as 'memory', got {uri!r}")
    check_collection_name(collection)
    scheme, _, rest = uri.strip().partition(":")
    if scheme == "memory":
        from ragembed.stores.memory import MemoryStore

        return MemoryStore(Path(rest).expanduser() / collection if rest else None)
    raise InvalidInputError(f"unknown store URI {uri!r}; ragembed knows {', '.join(SCHEMES)}")


def check_collection_name(name: str) -> None:
    # Collection names become folder names: no separators, no "..", nothing hidden.
    if not isinstance(name, str) or not name or name.startswith(".") or any(c in name for c in "/\\\0"):
        raise InvalidInputError(
            f"collection name {name!r} is not allowed; use letters, digits, '-' and '_'"
        )
