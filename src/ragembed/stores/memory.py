"""The exact in-memory store: numpy brute force for every kind of vector.

It is the reference every other backend is tested against, so it favours exactness and a clear
ranking rule over speed: scores are computed for every candidate, and ties are broken by
document id (ascending).

Saved to a folder (`memory:DIR` is DIR/<collection>) as JSON + .npy files, never pickle:

    ragembed-store.json   marker: {"store": "memory", "format": 2, "data": "data-<hex>"}
    ragembed.lock         held while a store may write (one writer at a time)
    data-<hex>/           schema.json, documents.jsonl, field<N>[.lengths|.indices|.values|.passages].npy

A save writes a new data-<hex> folder, then points the marker at it (one atomic rename), then
removes the old one: a save killed at any point leaves the previous copy or the new one whole.
The store writes only in a folder that holds its marker (or is new), see stores/folders.py.
A folder this process may read but not write opens read-only: searches work, writes are refused.
Folders saved by ragembed before the marker existed (the data files directly in the folder) are
read, and moved into the new layout by the next save.

Scores (higher is better):
  dense float32  cosine (vectors normalised on insert, as Qdrant does) or dot
  dense int8     dot of the de-quantized query and document, both quantized with the field's
                 calibration (vectors arrive as float32; the store quantizes, as engines do)
  dense binary   dim - 2 * Hamming distance between sign bits (the dot of the +-1 vectors);
                 asymmetric fields: the float32 query's dot with the documents' +-1 vectors
  multi-vector   MaxSim: sum over query tokens of the best dot with a document token; an int8 or
                 binary field scores it on its codes (de-quantized tokens, or +-1 per sign bit
                 against the query's own values when asymmetric), and keeps its float32 tokens
                 for the Rescore step
  sparse         dot, with query weights times IDF = ln(1 + (N - df + 0.5) / (df + 0.5)) when the
                 field has idf=True (Lucene's and Qdrant's formula; N, df over stored documents)
  sparse per     a document's best passage's sparse score, N and df counted over passages (as
  passage        Qdrant counts the passage points holding the field)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import scipy.sparse as sp

from ragembed.errors import RagembedError, StoreError
from ragembed.quantization import (
    asymmetric_binary_similarity,
    dequantize_int8,
    hamming_similarity,
    int8_similarity,
    quantize_binary,
    quantize_int8,
)
from ragembed.search.capabilities import Capabilities
from ragembed.search.filters import Filter, matches
from ragembed.search.plan import Fusion, KeywordSearch, Plan, Rerank, Rescore
from ragembed.search.ranking import rrf_scores
from ragembed.search.schema import Schema, VectorField
from ragembed.similarity import normalize_rows
from ragembed.stores import folders
from ragembed.stores.base import VectorStore
from ragembed.types import (
    Datatype,
    DenseEmbeddings,
    Document,
    EmbeddingKind,
    Embeddings,
    Hit,
    MultiVectorEmbeddings,
    PassageMap,
    Precision,
    SparseEmbeddings,
    SparsePassageEmbeddings,
)

FORMAT_VERSION = 1  # of the files in a data folder
LAYOUT_VERSION = 2  # of the store folder: marker + data-<hex>/ (1: the data files in the folder itself)
STORE = "memory"
DATA_FOLDER = re.compile(r"^data-[0-9a-f]{32}$")
LEGACY_FILE = re.compile(r"^(schema\.json|documents\.jsonl|field\d+(\.(lengths|indices|values))?\.npy)$")


class MemoryStore(VectorStore):
    """Exact search over documents held in memory; `path` makes it persist there on close().

    Args:
        path: a folder the store owns (created, or one it created before); None keeps nothing.
    """

    # TurboQuant (turbo8/turbo4) is Qdrant's own codec: the exact store cannot score like it.
    capabilities = Capabilities(datatypes=frozenset({Datatype.FLOAT32, Datatype.FLOAT16}))

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._schema: Schema | None = None
        self._docs: list[Document] = []
        self._rows: dict[str, int] = {}
        self._vectors: dict[str, list[Any]] = {}  # field -> one row per document, in _docs order
        self._passage_maps: dict[str, PassageMap] = {}  # document id -> its passages (collections in passages)
        self._matrices: dict[str, Any] = {}  # field -> stacked form for search, rebuilt lazily
        # One scan at a time: each already uses every core through BLAS, and concurrent scans
        # oversubscribe them (benchmarks/load.py, docs/reliability.md).
        self._scan = threading.Lock()
        self._claim: folders.Claim | None = None
        self._dirty = False  # changed since loaded or saved
        self.read_only = False
        if self.path is not None and folders.check_can_open(self.path, STORE):
            self._open_saved()

    def _folder(self) -> Path:
        """The store's folder; only a store given a path has one."""
        if self.path is None:
            raise StoreError("this MemoryStore keeps nothing on disk: give it a path, or call save(path)")
        return self.path

    def __repr__(self) -> str:
        return f"MemoryStore(path={str(self.path) if self.path else None!r}, count={self.count()})"

    def _open_saved(self) -> None:
        try:
            self._claim = folders.claim(self._folder(), STORE)
        except PermissionError:
            self.read_only = True  # a folder this process may only read: serve searches, refuse writes
        try:
            data = self._saved_data()
            if data is not None:
                self._load(data)
            if self._claim is not None:
                self._remove_stale(keep=data)
        except BaseException:
            self._release()
            raise

    def check_writable(self) -> None:
        if self.path is None or self._claim is not None:
            return
        if self.read_only:
            raise StoreError(
                f"the memory store at {self.path} is read-only for this process (it cannot write that "
                "folder): searches work, writes do not. Copy the folder somewhere writable, or fix its "
                "permissions"
            )
        try:
            claim = folders.claim(self.path, STORE)
        except PermissionError as exc:
            raise StoreError(
                f"cannot write the memory store at {self.path}: {exc.strerror}; check the "
                "folder's permissions, or choose another folder"
            ) from exc
        if self._saved_data() is not None:  # it was new when this store opened it
            claim.release()
            raise StoreError(
                f"another store saved a collection at {self.path} after this one was opened there; "
                "open it again to work on what is saved, or use another collection name"
            )
        self._claim = claim

    # --- VectorStore --------------------------------------------------------------------------
    @property
    def schema(self) -> Schema | None:
        return self._schema

    def _create(self, schema: Schema) -> None:
        self._schema = schema
        self._vectors = {f.name: [] for f in schema.fields}
        self._dirty = True

    def _update_schema(self, schema: Schema) -> None:
        self._create(schema)

    def drop(self) -> None:
        self.check_writable()
        self._schema, self._docs, self._rows, self._vectors, self._passage_maps = None, [], {}, {}, {}
        self._matrices.clear()
        self._dirty = False
        if self.path is not None:
            old = self._saved_data()
            folders.write_marker(self.path, STORE, format=LAYOUT_VERSION, data=None)
            self._remove_data(old)

    def count(self) -> int:
        return len(self._docs)

    def other_collections(self) -> list[str] | None:
        if self.path is None:
            return None
        return [n for n in folders.collections_in(self.path.parent, STORE) if n != self.path.name]

    def get(self, ids: Sequence[str]) -> list[Document]:
        return [self._docs[self._rows[i]] for i in ids if i in self._rows]

    def _stored_vectors(self, ids: list[str], field: str) -> dict[str, np.ndarray]:
        return {i: self._vectors[field][self._rows[i]] for i in ids if i in self._rows}

    def _upsert(
        self, documents: list[Document], vectors: dict[str, Embeddings], passage_maps: list[PassageMap] | None
    ) -> None:
        prepared = {name: self._rows_for(self._require_schema()[name], emb) for name, emb in vectors.items()}
        self._passage_maps.update(zip((d.id for d in documents), passage_maps or ()))
        for position, doc in enumerate(documents):
            row = self._rows.get(doc.id)
            if row is None:
                self._rows[doc.id] = len(self._docs)
                self._docs.append(doc)
                for name, rows in prepared.items():
                    self._vectors[name].append(rows[position])
            else:
                self._docs[row] = doc
                for name, rows in prepared.items():
                    self._vectors[name][row] = rows[position]
        self._matrices.clear()
        self._dirty = True

    def _delete(self, ids: list[str]) -> int:
        doomed = {self._rows[i] for i in ids if i in self._rows}
        if doomed:
            keep = [r for r in range(len(self._docs)) if r not in doomed]
            self._docs = [self._docs[r] for r in keep]
            self._vectors = {n: [rows[r] for r in keep] for n, rows in self._vectors.items()}
            for i in ids:
                self._passage_maps.pop(i, None)
            self._rows = {d.id: r for r, d in enumerate(self._docs)}
            self._matrices.clear()
            self._dirty = True
        return len(doomed)

    def _delete_where(self, filter: Filter) -> int:
        return self._delete([d.id for d in self._docs if matches(d.metadata, filter)])

    def _search(self, plan: Plan, filter: Filter | None) -> list[Hit]:
        return self._search_many([plan], filter)[0]

    def _search_many(self, plans: list[Plan], filter: Filter | None) -> list[list[Hit]]:
        """The filter is evaluated once for every plan."""
        if filter:
            candidates = np.flatnonzero([matches(d.metadata, filter) for d in self._docs])
        else:
            candidates = np.arange(len(self._docs))
        answers = []
        with self._scan:
            for plan in plans:
                rows, scores = self._run(plan, candidates)
                answers.append(
                    [
                        Hit(
                            self._docs[r].id,
                            float(s),
                            self._docs[r].text,
                            dict(self._docs[r].metadata),
                            passage_map=self._passage_maps.get(self._docs[r].id),
                        )
                        for r, s in zip(rows, scores)
                    ]
                )
        return answers

    def close(self) -> None:
        """Save what changed (to the store's folder) and release the folder."""
        try:
            if self.path is not None and self._schema is not None and self._dirty:
                self.save()
        finally:
            self._release()

    def _release(self) -> None:
        if self._claim is not None:
            self._claim.release()
            self._claim = None

    # --- plan execution -----------------------------------------------------------------------
    def _run(self, plan: Plan, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of the plan's top `limit` among `candidates` (row numbers)."""
        if isinstance(plan, Fusion):
            rankings = [self._run(stage, candidates)[0].tolist() for stage in plan.prefetch]
            fused = rrf_scores(rankings, plan.rrf_k, plan.weights)
            rows = np.fromiter(fused, dtype=np.int64, count=len(fused))
            scores = np.fromiter(fused.values(), dtype=np.float64, count=len(fused))
            return self._top(rows, scores, plan.limit)
        assert not isinstance(plan, KeywordSearch), plan  # check_capable refuses these: no keyword index
        assert not isinstance(plan, Rerank), plan  # VectorStore.search_many runs a rerank's first stage only
        if plan.prefetch:
            pooled = [self._run(stage, candidates)[0] for stage in plan.prefetch]
            candidates = np.unique(np.concatenate(pooled)) if pooled else candidates
        schema = self._require_schema()
        if isinstance(plan, Rescore):  # the quantized field's best candidates, ranked by the originals
            best = np.sort(
                self._top(candidates, self._score(schema[plan.field], plan.query, candidates), plan.candidates)[0]
            )
            return self._top(best, self._score(schema[plan.original], plan.query, best, originals=True), plan.limit)
        scores = self._score(schema[plan.field], plan.query, candidates)
        hit = np.isfinite(scores)  # -inf: a sparse vector sharing no term with the query (as Qdrant)
        return self._top(candidates[hit], scores[hit], plan.limit)

    def _top(self, rows: np.ndarray, scores: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """The `limit` best rows: highest score first, ties by document id (so every backend can
        agree on one order)."""
        scores = np.asarray(scores, dtype=np.float64)
        if len(rows) > limit:
            # Keep everything scoring at least the limit-th best score, so ties at the cut-off
            # are decided by id below, not by where argpartition happened to put them.
            threshold = np.partition(scores, len(scores) - limit)[len(scores) - limit]
            keep = scores >= threshold
            rows, scores = rows[keep], scores[keep]
        order = sorted(range(len(rows)), key=lambda i: (-scores[i], self._docs[rows[i]].id))[:limit]
        return rows[order].astype(np.int64), scores[order]

    def _score(self, f: VectorField, query: Embeddings, rows: np.ndarray, originals: bool = False) -> np.ndarray:
        """Scores of `rows` (sorted, distinct); originals=True scores a quantized multi-vector
        field's float32 tokens instead of its codes."""
        if len(rows) == 0:
            return np.zeros(0)
        if isinstance(query, MultiVectorEmbeddings):
            if f.precision is Precision.FLOAT32 or originals:
                return self._maxsim(self._matrix(f), query.vectors[0], rows)
            q = f.scored_as_float(query.vectors[0], query=True)
            return self._maxsim(self._quantized_tokens(f), q, rows)
        matrix = self._matrix(f)
        if isinstance(query, SparseEmbeddings) and f.per_passage:
            terms, starts, lengths = matrix
            passages = np.concatenate([np.arange(starts[r], starts[r] + lengths[r]) for r in rows])
            by_passage = self._sparse_scores(f, terms, query, passages)  # -inf: a passage sharing no term
            return np.maximum.reduceat(by_passage, np.concatenate([[0], np.cumsum(lengths[rows])[:-1]]))
        if isinstance(query, SparseEmbeddings):
            return self._sparse_scores(f, matrix, query, rows)
        assert isinstance(query, DenseEmbeddings), query  # a query is never a set of passages
        q = query.data[0]
        # Candidates are sorted, distinct rows, so as many as the matrix holds means all of them: read
        # it in place, since fancy-indexing every row would copy it per query (154 MB at 100k vectors).
        stored = matrix if len(rows) == len(matrix) else matrix[rows]
        if f.precision is Precision.BINARY and f.asymmetric:
            return asymmetric_binary_similarity(q, stored)
        if f.precision is Precision.BINARY:
            return hamming_similarity(self._quantize(f, query.data)[0], stored)
        if f.precision is Precision.INT8:
            calibration = f.int8_calibration()
            q_codes = self._quantize(f, query.data)[0]
            return int8_similarity(dequantize_int8(q_codes, calibration), stored, calibration)
        if f.distance == "cosine":
            q = normalize_rows(q[None, :])[0]
        scores: np.ndarray = stored @ q
        return scores

    @staticmethod
    def _maxsim(matrix: tuple[np.ndarray, np.ndarray, np.ndarray], query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        tokens, starts, lengths = matrix
        if len(rows) == len(starts) and (rows == np.arange(len(starts))).all():
            # every document, in order: no copy of the token matrix (a query with one vector, a
            # dense model's over passages, would spend most of its time copying it)
            sims, offsets = query @ tokens.T, starts
        else:
            picked = np.concatenate([np.arange(starts[r], starts[r] + lengths[r]) for r in rows])
            sims = query @ tokens[picked].T  # (query tokens, candidate tokens)
            offsets = np.concatenate([[0], np.cumsum(lengths[rows])[:-1]])
        return np.asarray(np.maximum.reduceat(sims, offsets, axis=1).sum(axis=0), dtype=np.float32)

    def _sparse_scores(
        self, f: VectorField, matrix: tuple[Any, dict[int, int]], query: SparseEmbeddings, rows: np.ndarray
    ) -> np.ndarray:
        csc, columns = matrix
        present = [(columns[int(t)], float(w)) for t, w in zip(query.indices[0], query.values[0]) if int(t) in columns]
        if not present:
            return np.full(len(rows), -np.inf)
        cols = np.array([c for c, _ in present])
        weights = np.array([w for _, w in present])
        sub = csc[:, cols]
        if f.idf:
            n = csc.shape[0]
            df = np.diff(sub.indptr)
            weights = weights * np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        picked = sub[rows]
        scores = np.asarray(picked @ weights, dtype=np.float64).ravel()
        scores[np.diff(picked.tocsr().indptr) == 0] = -np.inf
        return scores

    def _matrix(self, f: VectorField) -> Any:
        """The field's vectors stacked for search, cached until the next write: dense, one matrix;
        multi-vector, (tokens, first token per row, tokens per row); sparse, (CSC matrix, column
        of each term); per-passage sparse, ((CSC matrix of every passage, column of each term),
        first passage per row, passages per row)."""
        if f.name not in self._matrices:
            rows = self._vectors[f.name]
            if f.kind is EmbeddingKind.DENSE:
                width = f.dim // 8 if f.precision is Precision.BINARY else f.dim
                dtype = {Precision.FLOAT32: np.float32, Precision.INT8: np.int8, Precision.BINARY: np.uint8}[
                    f.precision
                ]
                built: Any = np.stack(rows) if rows else np.zeros((0, width), dtype=dtype)
            elif f.kind is EmbeddingKind.MULTIVECTOR:
                lengths = np.array([len(r) for r in rows], dtype=np.int64)
                starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
                built = (np.concatenate(rows) if rows else np.zeros((0, f.dim), np.float32), starts, lengths)
            elif f.per_passage:
                lengths = np.array([len(r) for r in rows], dtype=np.int64)
                starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
                built = (self._sparse_matrix(_every_passage(rows)), starts, lengths)
            else:
                built = self._sparse_matrix(rows)
            self._matrices[f.name] = built
        return self._matrices[f.name]

    def _quantized_tokens(self, f: VectorField) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A quantized multi-vector field's tokens as the float32 vectors its codes stand for
        (VectorField.scored_as_float), cached like `_matrix`."""
        key = f"{f.name}\0codes"  # no field name holds a NUL
        if key not in self._matrices:
            tokens, starts, lengths = self._matrix(f)
            self._matrices[key] = (f.scored_as_float(tokens), starts, lengths)
        built: tuple[np.ndarray, np.ndarray, np.ndarray] = self._matrices[key]
        return built

    @staticmethod
    def _sparse_matrix(rows: list[Any]) -> tuple[Any, dict[int, int]]:
        # Term indices can be any uint32; map the ones in use onto compact CSC columns.
        terms = np.unique(np.concatenate([r[0] for r in rows])) if rows else np.zeros(0, np.uint32)
        columns = {int(t): c for c, t in enumerate(terms.tolist())}
        indptr = np.concatenate([[0], np.cumsum([len(r[0]) for r in rows])]).astype(np.int64)
        col_idx = np.searchsorted(terms, np.concatenate([r[0] for r in rows])) if rows else np.zeros(0)
        data = np.concatenate([r[1] for r in rows]) if rows else np.zeros(0, np.float32)
        csr = sp.csr_matrix((data.astype(np.float64), col_idx, indptr), shape=(len(rows), len(terms)))
        return csr.tocsc(), columns

    @staticmethod
    def _quantize(f: VectorField, vectors: np.ndarray) -> np.ndarray:
        """float32 -> the field's precision (int8 with the field's calibration, or sign bits)."""
        dense = DenseEmbeddings(vectors)
        if f.precision is Precision.INT8:
            return quantize_int8(dense, f.int8_calibration()).data
        return quantize_binary(dense).data

    @classmethod
    def _rows_for(cls, f: VectorField, emb: Embeddings) -> list[Any]:
        if isinstance(emb, DenseEmbeddings):
            if f.precision is not Precision.FLOAT32:
                return list(cls._quantize(f, emb.data))
            return list(normalize_rows(emb.data) if f.distance == "cosine" else emb.data.copy())
        if isinstance(emb, MultiVectorEmbeddings):
            # float16 fields keep half floats (MaxSim multiplies them with the float32 query)
            dtype = np.float16 if f.datatype is Datatype.FLOAT16 else np.float32
            return [m.astype(dtype, copy=False) for m in emb.vectors]
        if isinstance(emb, SparsePassageEmbeddings):  # one SparseEmbeddings (its passages') a document
            return list(emb.passages)
        return list(zip(emb.indices, emb.values))

    # --- persistence --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str] | None = None) -> None:
        """Write the collection to its folder (or to `path`, a folder that is new, empty or
        another saved memory store), replacing the earlier copy atomically."""
        if self._schema is None:
            raise StoreError("nothing to save: the collection does not exist yet")
        target = self.path if path is None else Path(path).expanduser()
        if target is None:
            raise StoreError("this memory store has no folder; pass save(path)")
        if target == self.path:
            self.check_writable()
            self._save_into(target)
            self._dirty = False
            return
        try:
            claim = folders.claim(target, STORE)
        except PermissionError as exc:
            raise StoreError(f"cannot save the memory store to {target}: {exc.strerror}") from exc
        try:
            self._save_into(target)
        finally:
            claim.release()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MemoryStore:
        store = cls(path)
        if store.schema is None:
            store.close()
            raise StoreError(f"no saved memory store at {path}")
        return store

    def _save_into(self, folder: Path) -> None:
        """New data folder, then the marker pointed at it (the commit), then the old one removed."""
        old = self._saved_data(folder)
        staging = folder / f"data-{uuid.uuid4().hex}"
        try:
            staging.mkdir()
            self._write(staging)
            folders.write_marker(folder, STORE, format=LAYOUT_VERSION, data=staging.name)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, OSError):
                raise StoreError(f"cannot save the memory store to {folder}: {exc}") from exc
            raise
        self._remove_data(old, folder)

    def _saved_data(self, folder: Path | None = None) -> Path | None:
        """The folder holding the saved data: the one the marker names, the store folder itself
        for a layout-1 save, or None when nothing is saved."""
        folder = folder or self._folder()
        marker = folders.read_marker(folder)
        if marker is None:
            return folder if (folder / "schema.json").is_file() else None
        name = marker.get("data")
        if name is None:
            return None
        if not isinstance(name, str) or not DATA_FOLDER.match(name) or not (folder / name).is_dir():
            raise StoreError(
                f"{folder / folders.MARKER} names the data folder {name!r}, which is not there; the store "
                "is damaged (was the folder edited or partly copied?)"
            )
        return folder / name

    def _remove_data(self, data: Path | None, folder: Path | None = None) -> None:
        folder = folder or self._folder()
        if data is None:
            return
        if data == folder:  # layout 1: only its own files, nothing else in the folder
            for entry in folder.iterdir():
                if LEGACY_FILE.match(entry.name):
                    entry.unlink()
        else:
            shutil.rmtree(data, ignore_errors=True)

    def _remove_stale(self, keep: Path | None) -> None:
        """Data folders of saves killed before their commit (never named by the marker)."""
        for entry in self._folder().iterdir():
            if DATA_FOLDER.match(entry.name) and entry != keep:
                shutil.rmtree(entry, ignore_errors=True)

    def _write(self, folder: Path) -> None:
        """The data files, each flushed to disk before the marker is pointed at them."""
        with _durable(folder / "schema.json", "w") as out:
            json.dump({"format": FORMAT_VERSION, "schema": self._require_schema().to_dict()}, out, indent=1)
        with _durable(folder / "documents.jsonl", "w") as out:
            for d in self._docs:
                record = {"id": d.id, "text": d.text, "metadata": dict(d.metadata)}
                if d.id in self._passage_maps:
                    record["passage_map"] = self._passage_maps[d.id].encoded
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        for number, f in enumerate(self._require_schema().fields):
            rows = self._vectors[f.name]
            if f.kind is EmbeddingKind.DENSE:
                arrays = {"": self._matrix(f)}
            elif f.kind is EmbeddingKind.MULTIVECTOR:
                tokens, _, lengths = self._matrix(f)
                arrays = {"": tokens, ".lengths": lengths}
            elif f.per_passage:  # its passages' sparse vectors in order, and how many a document has
                passages = _every_passage(rows)
                arrays = {
                    ".indices": np.concatenate([p[0] for p in passages]) if passages else np.zeros(0, np.uint32),
                    ".values": np.concatenate([p[1] for p in passages]) if passages else np.zeros(0, np.float32),
                    ".lengths": np.array([len(p[0]) for p in passages], dtype=np.int64),
                    ".passages": np.array([len(r) for r in rows], dtype=np.int64),
                }
            else:
                arrays = {
                    ".indices": np.concatenate([r[0] for r in rows]) if rows else np.zeros(0, np.uint32),
                    ".values": np.concatenate([r[1] for r in rows]) if rows else np.zeros(0, np.float32),
                    ".lengths": np.array([len(r[0]) for r in rows], dtype=np.int64),
                }
            for suffix, array in arrays.items():
                with _durable(folder / f"field{number}{suffix}.npy", "wb") as out:
                    np.save(out, array, allow_pickle=False)

    def _load(self, folder: Path) -> None:
        try:
            meta = json.loads((folder / "schema.json").read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
                raise StoreError(
                    f"{folder / 'schema.json'} is not a ragembed memory store schema of format {FORMAT_VERSION}"
                )
            self._create(Schema.from_dict(meta["schema"]))
            with open(folder / "documents.jsonl", encoding="utf-8") as lines:
                records = [json.loads(line) for line in lines]
            self._docs = [Document(r["id"], r["text"], r["metadata"]) for r in records]
            self._passage_maps = {r["id"]: PassageMap(r["passage_map"]) for r in records if "passage_map" in r}
            self._rows = {d.id: r for r, d in enumerate(self._docs)}
            for number, f in enumerate(self._require_schema().fields):
                self._vectors[f.name] = self._read_field(folder, number, f)
                if len(self._vectors[f.name]) != len(self._docs):
                    raise StoreError(
                        f"field {f.name!r} holds {len(self._vectors[f.name])} vectors for {len(self._docs)} documents"
                    )
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RagembedError) as exc:
            self._schema, self._docs, self._rows, self._vectors, self._passage_maps = None, [], {}, {}, {}
            raise StoreError(
                f"cannot load the memory store at {folder}: {exc}. The folder is damaged or was "
                "written by another program; ragembed leaves it as it is"
            ) from exc
        self._dirty = False

    @staticmethod
    def _read_field(folder: Path, number: int, f: VectorField) -> list[Any]:
        def load(suffix: str) -> np.ndarray:
            return np.asarray(np.load(folder / f"field{number}{suffix}.npy", allow_pickle=False))

        if f.kind is EmbeddingKind.DENSE:
            return list(load(""))
        lengths = load(".lengths")
        cuts = np.cumsum(lengths)[:-1]
        if f.kind is EmbeddingKind.MULTIVECTOR:
            return list(np.split(load(""), cuts))
        sparse = SparseEmbeddings(tuple(np.split(load(".indices"), cuts)), tuple(np.split(load(".values"), cuts)))
        if f.per_passage:
            bounds = np.cumsum([0, *load(".passages").tolist()])
            return [sparse.take(range(a, b)) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]
        return list(zip(sparse.indices, sparse.values))


def _every_passage(rows: list[SparseEmbeddings]) -> list[tuple[np.ndarray, np.ndarray]]:
    """A per-passage sparse field's (indices, values) of every passage, document after document."""
    return [p for r in rows for p in zip(r.indices, r.values)]


@contextmanager
def _durable(path: Path, mode: str) -> Iterator[IO[Any]]:
    """open() whose file is flushed to the disk (fsync) before it is closed."""
    with open(path, mode, encoding=None if "b" in mode else "utf-8") as file:
        yield file
        file.flush()
        os.fsync(file.fileno())
