"""Store URIs, shared by the CLI and the Python API.

memory                  the exact in-memory store, gone when the process ends
memory:DIR              the exact in-memory store, loaded from DIR/<collection> if it is
                        there and saved there on close
qdrant-edge:DIR         the embedded Qdrant engine, persisted in DIR/<collection>
qdrant-local:           qdrant-client's local mode in memory (also qdrant-local::memory:)
qdrant-local:DIR        qdrant-client's local mode, persisted in DIR
qdrant://HOST[:PORT]    a Qdrant server over HTTP (qdrants:// for HTTPS); the API key comes
                        from $QDRANT_API_KEY, never from the URI, so it is not logged
weaviate://HOST[:PORT]  a Weaviate server over HTTP (weaviates:// for HTTPS), gRPC on
                        $WEAVIATE_GRPC_PORT, else 50051 (443 with https); the API key comes
                        from $WEAVIATE_API_KEY
weaviate-embedded:DIR   an embedded Weaviate server with its data in DIR (started from the
                        binary scripts/weaviate.sh builds; stopped on close)
"""

from __future__ import annotations

import os
from pathlib import Path

from ragembed.errors import InvalidInputError
from ragembed.stores.base import VectorStore
from ragembed.types import is_plain_name

SCHEMES = [
    "memory",
    "memory:DIR",
    "qdrant-edge:DIR",
    "qdrant-local:[DIR]",
    "qdrant://HOST:PORT",
    "qdrants://HOST:PORT",
    "weaviate://HOST:PORT",
    "weaviates://HOST:PORT",
    "weaviate-embedded:DIR",
]


def open_store(uri: str, collection: str = "default") -> VectorStore:
    """Open the collection `collection` of the store that `uri` names."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInputError(f"a store URI is a non-empty string such as 'memory', got {uri!r}")
    check_collection_name(collection)
    scheme, _, rest = uri.strip().partition(":")
    if scheme == "memory":
        from ragembed.stores.memory import MemoryStore

        return MemoryStore(Path(rest).expanduser() / collection if rest else None)
    if scheme == "qdrant-edge":
        if not rest:
            raise InvalidInputError("qdrant-edge needs a folder: qdrant-edge:./index")
        from ragembed.stores.qdrant.edge import QdrantEdgeStore

        return QdrantEdgeStore(rest, collection)
    if scheme == "qdrant-local":
        from ragembed.stores.qdrant.client import QdrantStore

        return QdrantStore(collection, path=rest if rest and rest != ":memory:" else ":memory:")
    if scheme in ("qdrant", "qdrants"):
        from ragembed.stores.qdrant.client import QdrantStore

        host = rest.lstrip("/")
        if not host:
            raise InvalidInputError(f"{uri!r}: name the server, e.g. qdrant://localhost:6333")
        url = f"{'https' if scheme == 'qdrants' else 'http'}://{host}"
        return QdrantStore(collection, url=url, api_key=os.environ.get("QDRANT_API_KEY") or None)
    if scheme in ("weaviate", "weaviates"):
        from ragembed.stores.weaviate.store import WeaviateStore

        host = rest.lstrip("/")
        if not host:
            raise InvalidInputError(f"{uri!r}: name the server, e.g. weaviate://localhost:8080")
        return WeaviateStore(f"{'https' if scheme == 'weaviates' else 'http'}://{host}", collection)
    if scheme == "weaviate-embedded":
        if not rest:
            raise InvalidInputError("weaviate-embedded needs a folder: weaviate-embedded:./weaviate-data")
        from ragembed.stores.weaviate.store import WeaviateStore

        return WeaviateStore.embedded(rest, collection)
    raise InvalidInputError(f"unknown store URI {uri!r}; ragembed knows {', '.join(SCHEMES)}")


def check_collection_name(name: str) -> None:
    # Collection names become folder names: no separators, no "..", nothing hidden.
    if not is_plain_name(name):
        raise InvalidInputError(
            f"collection name {name!r} is not allowed: it names a folder, so it must be non-empty, with no "
            "'/', '\\' or NUL and no leading '.'; letters, digits, '-' and '_' work with every store"
        )
