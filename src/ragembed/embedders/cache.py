"""A persistent embeddings cache keyed by (embedder identity, role, text content).

Encoding is the slowest step on a CPU (about 22 SciFact abstracts per second on 2 cores), so
indexing the same texts twice, or evaluating several strategies on one corpus, must not encode
twice. SQLite (standard library, safe across threads and processes) holds one row per text;
vectors are stored as raw little-endian bytes with their shape, never pickled.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragembed.errors import StoreError
from ragembed.types import DenseEmbeddings, EmbeddingKind, Embeddings, MultiVectorEmbeddings, SparseEmbeddings, narrow


def default_cache_dir() -> Path:
    """$RAGEMBED_CACHE_DIR, else ~/.cache/ragembed."""
    return Path(os.environ.get("RAGEMBED_CACHE_DIR") or Path.home() / ".cache" / "ragembed")


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Embeddings of single texts, persisted in one SQLite file."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        directory = Path(path) if path is not None else default_cache_dir()
        self.path = directory / "embeddings.sqlite" if directory.suffix != ".sqlite" else directory
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS embeddings ("
                "embedder TEXT NOT NULL, role TEXT NOT NULL, text_sha256 BLOB NOT NULL, "
                "vector BLOB NOT NULL, PRIMARY KEY (embedder, role, text_sha256))"
            )
            self._conn.commit()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"cannot open the embeddings cache at {self.path}: {exc}; set RAGEMBED_CACHE_DIR to a "
                "writable folder, or pass cache=False to the embedder"
            ) from exc
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"

    def get_many(self, embedder: str, role: str, texts: Sequence[str]) -> list[bytes | None]:
        keys = [text_key(t) for t in texts]
        found: dict[bytes, bytes] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT text_sha256, vector FROM embeddings WHERE embedder=? AND role=? "
                    f"AND text_sha256 IN ({marks})",
                    (embedder, role, *chunk),
                ).fetchall()
                found.update((bytes(k), bytes(v)) for k, v in rows)
        return [found.get(k) for k in keys]

    def put_many(self, embedder: str, role: str, texts: Sequence[str], blobs: Sequence[bytes]) -> None:
        with self._lock:
            self._conn.executemany(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)",
                [(embedder, role, text_key(t), b) for t, b in zip(texts, blobs)],
            )
            self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# --- one row <-> bytes, per kind -------------------------------------------------------------
# Layout: a header of uint32 numbers (the shape), then the raw arrays. Only numbers, so reading a
# cache file can never run code.


def rows_of(embeddings: Embeddings) -> list[Any]:
    if isinstance(embeddings, DenseEmbeddings):
        return list(embeddings.data)
    if isinstance(embeddings, MultiVectorEmbeddings):
        return list(embeddings.vectors)
    sparse = narrow(embeddings, SparseEmbeddings)  # an embedder embeds each text (passage) on its own
    return list(zip(sparse.indices, sparse.values))


def join_rows(kind: EmbeddingKind, rows: list[Any]) -> Embeddings:
    if kind is EmbeddingKind.DENSE:
        return DenseEmbeddings(np.stack(rows).astype(np.float32))
    if kind is EmbeddingKind.MULTIVECTOR:
        return MultiVectorEmbeddings(tuple(rows))
    return SparseEmbeddings(tuple(r[0] for r in rows), tuple(r[1] for r in rows))


def encode_row(kind: EmbeddingKind, row: Any) -> bytes:
    if kind is EmbeddingKind.SPARSE:
        idx, val = row
        return struct.pack("<I", len(idx)) + bytes(idx.astype("<u4").tobytes()) + bytes(val.astype("<f4").tobytes())
    array = np.asarray(row, dtype="<f4")
    return struct.pack("<II", *(array.shape if array.ndim == 2 else (1, array.shape[0]))) + array.tobytes()


def decode_row(kind: EmbeddingKind, blob: bytes) -> Any:
    if kind is EmbeddingKind.SPARSE:
        (n,) = struct.unpack_from("<I", blob)
        idx = np.frombuffer(blob, dtype="<u4", count=n, offset=4).astype(np.uint32)
        val = np.frombuffer(blob, dtype="<f4", count=n, offset=4 + 4 * n).astype(np.float32)
        return idx, val
    rows, cols = struct.unpack_from("<II", blob)
    array = np.frombuffer(blob, dtype="<f4", offset=8).astype(np.float32).reshape(rows, cols)
    return array[0] if kind is EmbeddingKind.DENSE else array
