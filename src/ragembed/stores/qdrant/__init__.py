"""Qdrant: `QdrantStore` (qdrant-client: a server, a cluster, or local mode) in client.py, the
embedded engine `QdrantEdgeStore` (qdrant-edge-py) in edge.py, and mapping.py, the one mapping of
ragembed fields, plans and filters onto Qdrant's model that both use.

The stores load on first use, so each needs only its own client library installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ragembed.stores.qdrant.client import QdrantStore
    from ragembed.stores.qdrant.edge import QdrantEdgeStore

_LAZY = {"QdrantStore": "ragembed.stores.qdrant.client", "QdrantEdgeStore": "ragembed.stores.qdrant.edge"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["QdrantEdgeStore", "QdrantStore"]
