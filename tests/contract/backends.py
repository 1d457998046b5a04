"""The store backends the contract suite runs against. A new adapter adds one entry here.

Each entry: a factory that takes pytest's tmp_path and returns a fresh, empty store (one
collection), and for stores that persist, `reopen`: after the test data is written, the suite
closes the store and searches a reopened one, so every contract test also checks persistence.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ragembed import MemoryStore, VectorStore


def memory(tmp_path: Path) -> VectorStore:
    return MemoryStore()


def memory_persisted(tmp_path: Path) -> VectorStore:
    return MemoryStore(tmp_path / "collection")


Factory = Callable[[Path], VectorStore]

BACKENDS: dict[str, tuple[Factory, Factory | None]] = {
    "memory": (memory, None),
    "memory-persisted": (memory_persisted, memory_persisted),
}
