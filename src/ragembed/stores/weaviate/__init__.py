"""Weaviate: `WeaviateStore` (store.py) on a server by URL or embedded; connection.py opens the
clients and runs the embedded server, embedded_owner.py stops one a killed process left behind,
properties.py maps metadata and filters onto Weaviate's typed properties.

The store loads on first use, so ragembed imports without weaviate-client installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ragembed.stores.weaviate.store import WeaviateStore


def __getattr__(name: str) -> Any:
    if name == "WeaviateStore":
        return importlib.import_module("ragembed.stores.weaviate.store").WeaviateStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["WeaviateStore"]
