"""The embedded Qdrant engine (qdrant-edge-py): the real Qdrant storage and search in-process,
persisted to a directory. ragembed's default store for users who run no server.

Layout: DIR/<collection>/shard (the Edge shard), DIR/<collection>/ragembed-schema.json, and the
folder's marker and lock (stores/folders.py): the store writes only in a folder it created, one
writer at a time.
The field mapping is the Qdrant server's (one mapping for both: mapping.py), quantization
included: int8 and binary fields are native Qdrant scalar/binary quantization, searched with
rescoring and oversampling; multi-vector fields can be kept as float16 or as TurboQuant codes
(turbo8/turbo4). `optimize()` (run by Retriever.index after a bulk load) builds the HNSW and
quantized indexes of segments big enough to need them; smaller segments are searched exactly.

Passages (a per-passage field): each passage is a point of its own (`passage_payload`: its
document's id and position, the document's metadata for filters) holding the per-passage fields,
HNSW-indexed, beside the document's point (text, metadata, passage map, the other fields). A search
of them (mapping.by_passages) asks for a few passages a document wanted (more until the answer is
exact), keeps each document's best (Qdrant Edge has no grouping query) and reads the documents'
points (as a candidate stage, only their ids: executor.by_stage): on SciFact-long 0.6-0.9 ms of
engine time and 2.4-2.7 ms through the Retriever a query (whole documents: 0.4 / 0.8-1.5 ms), where
one multivector a document, scored by a full MaxSim scan, took 3.2-4.6 ms of engine time
(benchmarks/passage_points.py, long_documents.py). Writing a document deletes its old passage
points first, so a shorter text leaves none behind.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragembed.errors import MissingDependencyError, RagembedError, SchemaMismatchError, StoreError
from ragembed.search import executor
from ragembed.search.capabilities import Capabilities
from ragembed.search.filters import Filter
from ragembed.search.plan import Plan
from ragembed.search.schema import Schema, VectorField
from ragembed.stores import folders
from ragembed.stores.base import VectorStore
from ragembed.stores.ids import point_id
from ragembed.stores.qdrant.mapping import (
    PASSAGE_INDEX_KEY,
    PASSAGE_OF_KEY,
    QDRANT_FILTER_KEYS,
    DocumentPoints,
    FilterClasses,
    PassageRows,
    PassageSearch,
    QuantizedSearch,
    Query,
    Request,
    RequestClasses,
    document_of,
    document_points,
    hit_reader,
    needs_stages,
    one_query,
    passage_points,
    payload_of,
    payload_wanted,
    qdrant_filter,
    query_of,
    request_of,
    vector_layout,
    vector_values,
)
from ragembed.types import Datatype, Document, EmbeddingKind, Embeddings, Hit, PassageMap, Precision

try:
    import qdrant_edge as qe
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError.for_extra("qdrant-edge-py", "qdrant") from exc

FILTERS = FilterClasses(qe.Filter, qe.FieldCondition, qe.MatchValue, qe.MatchAny, qe.RangeFloat, np.bool_)
SCHEMA_FILE = "ragembed-schema.json"
STORE = "qdrant-edge"
# Multi-vector storage datatypes; TurboQuant (Qdrant 1.18) stores 8 or 4 bits a dimension and
# keeps no float copy, which is what brings ColBERT tokens near PLAID's size (docs/benchmarks.md).
EDGE_DATATYPES = {
    Datatype.FLOAT32: None,
    Datatype.FLOAT16: qe.VectorStorageDatatype.Float16,
    Datatype.TURBO8: qe.VectorStorageDatatype.Turbo8,
    Datatype.TURBO4: qe.VectorStorageDatatype.Turbo4,  # type: ignore[attr-defined]  # the 0.9 stubs lack it
}


class QdrantEdgeStore(VectorStore):
    """One collection in an embedded Qdrant Edge shard under `path`.

    Args:
        path: the folder the store owns (created, or one it created before).
        collection: the collection, a folder inside `path`.
        indexing_threshold_kb: segment size from which the engine builds an HNSW index (below it,
            an exact scan).
        vectors_on_disk: a new collection keeps its float32 dense and multi-vector fields
            memory-mapped instead of in RAM (as QdrantStore's); kept with the collection, and a
            collection made with the other setting is refused.
        write_ahead_log: False makes a new collection without the engine's write-ahead log, a few
            32 MiB segments whatever the collection's size (117 MB beside SciFact's 67 MB
            `colbert+dense:turbo4` index, docs/benchmarks.md section 4). Without it each
            write is flushed to the segments before it returns (so what a call wrote is on disk
            when it returns, as with the log; a crash during a call can lose that call's writes),
            which makes small writes slower. Kept with the collection, like vectors_on_disk.
    """

    capabilities = Capabilities(
        native_quantization=True, datatypes=frozenset(EDGE_DATATYPES), filter_keys=QDRANT_FILTER_KEYS
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        collection: str = "default",
        *,
        indexing_threshold_kb: int | None = None,
        vectors_on_disk: bool | None = None,
        write_ahead_log: bool | None = None,
    ) -> None:
        """indexing_threshold_kb: segments larger than this get HNSW and quantized indexes when
        optimized (Qdrant's default, 10,000 KB, keeps small collections on exact full scans)."""
        self.root = Path(path).expanduser() / collection
        self.collection = collection
        self.indexing_threshold_kb = indexing_threshold_kb
        self.vectors_on_disk = bool(vectors_on_disk)
        self.write_ahead_log = write_ahead_log is not False
        self._shard: Any = None
        self._schema: Schema | None = None
        self._claim: folders.Claim | None = None
        if folders.check_can_open(self.root, STORE) and (self.root / SCHEMA_FILE).exists():
            self.check_writable()  # the engine writes its shard even to search (its write-ahead log)
            try:
                self._schema, on_disk, logged = self._read_schema()
                where = "keeps its full vectors " + ("on disk" if on_disk else "in RAM")
                self._refuse_other_setting("vectors_on_disk", vectors_on_disk, on_disk, where)
                made = f"was made {'with' if logged else 'without'} a write-ahead log"
                self._refuse_other_setting("write_ahead_log", write_ahead_log, logged, made)
                self.vectors_on_disk, self.write_ahead_log = on_disk, logged
                self._shard = self._open(lambda: qe.EdgeShard.load(str(self.root / "shard")))
            except BaseException:
                self.close()
                raise

    def _refuse_other_setting(self, name: str, asked: bool | None, recorded: bool, as_recorded: str) -> None:
        """A setting kept with the collection, asked for otherwise: refused, the collection untouched."""
        if asked is not None and asked != recorded:
            raise SchemaMismatchError(
                f"the Qdrant Edge collection at {self.root} {as_recorded}, not as {name}={asked} asks; "
                f"open it without {name}, or index into another collection"
            )

    def __repr__(self) -> str:
        return f"QdrantEdgeStore(path={str(self.root.parent)!r}, collection={self.collection!r})"

    def check_writable(self) -> None:
        if self._claim is not None:
            return
        try:
            self._claim = folders.claim(self.root, STORE)
        except PermissionError as exc:
            raise StoreError(
                f"cannot write {self.root}: {exc.strerror}. The Qdrant Edge engine opens its shard for "
                "writing even to search it; copy the folder somewhere writable, or fix its permissions"
            ) from exc
        if folders.read_marker(self.root) is None:
            folders.write_marker(self.root, STORE, format=1)

    def _read_schema(self) -> tuple[Schema, bool, bool]:
        """The collection's schema, whether its full vectors are on disk, whether it has a WAL."""
        path = self.root / SCHEMA_FILE
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            schema = Schema.from_dict(saved["schema"])
            passage_points = bool(saved.get("passage_points", False))
            on_disk = bool(saved.get("vectors_on_disk", False))
            logged = bool(saved.get("write_ahead_log", True))  # collections from before the setting have one
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RagembedError) as exc:
            raise StoreError(
                f"cannot read {path} ({type(exc).__name__}: {exc}): it is damaged or was written by "
                "another program; ragembed leaves the folder as it is"
            ) from exc
        if any(f.per_passage for f in schema.fields) and not passage_points:
            raise StoreError(
                f"the Qdrant Edge collection at {self.root} keeps its passages as one multivector a "
                "document (an earlier ragembed's layout), which this version does not search; drop it "
                "and index the documents again (CLI: ragembed index --recreate)"
            )
        return schema, on_disk, logged

    def other_collections(self) -> list[str] | None:
        return [n for n in folders.collections_in(self.root.parent, STORE) if n != self.collection]

    def _open(self, opener: Callable[[], Any]) -> Any:
        try:
            return opener()
        except Exception as exc:
            if "WouldBlock" in str(exc):
                raise StoreError(
                    f"the Qdrant Edge shard at {self.root} is open in another process (one process at a "
                    "time owns a shard); close that process, or run a Qdrant server for concurrent access"
                ) from exc
            raise StoreError(f"cannot open the Qdrant Edge shard at {self.root}: {exc}") from exc

    # --- schema -------------------------------------------------------------------------------
    @property
    def schema(self) -> Schema | None:
        return self._schema

    def _create(self, schema: Schema) -> None:
        config = qe.EdgeConfig(
            vectors={f.name: self._vector_params(f) for f in schema.fields if f.kind is not EmbeddingKind.SPARSE},
            sparse_vectors={
                f.name: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf if f.idf else None)
                for f in schema.fields
                if f.kind is EmbeddingKind.SPARSE
            },
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=self.indexing_threshold_kb)
            if self.indexing_threshold_kb is not None
            else None,
            wal_enabled=self.write_ahead_log,
        )
        # No schema file means no collection: a shard folder here is what a create killed before
        # its schema file left behind, in a folder this store owns (check_writable holds it).
        shutil.rmtree(self.root / "shard", ignore_errors=True)
        (self.root / "shard").mkdir(parents=True)
        self._shard = self._open(lambda: qe.EdgeShard.create(str(self.root / "shard"), config))
        if any(f.per_passage for f in schema.fields):  # what restricting a stage to documents filters on
            self._shard.update(qe.UpdateOperation.create_field_index(PASSAGE_OF_KEY, qe.PayloadSchemaType.Keyword))
        # Written after the shard exists, so a schema file always names a real shard.
        staging = self.root / f".{SCHEMA_FILE}.tmp"
        saved = {
            "format": 1,
            "schema": schema.to_dict(),
            "vectors_on_disk": self.vectors_on_disk,
            "write_ahead_log": self.write_ahead_log,
            "passage_points": True,  # each passage a point of its own (see the module's docstring)
        }
        staging.write_text(json.dumps(saved, indent=1))
        os.replace(staging, self.root / SCHEMA_FILE)
        self._schema = schema

    def _update_schema(self, schema: Schema) -> None:
        self.drop()  # only ever called on an empty collection
        self._create(schema)

    def drop(self) -> None:
        self.check_writable()
        if self._shard is not None:
            self._shard.close()
            self._shard = None
        # The schema file goes first: a folder without it is no collection, whatever is left.
        (self.root / SCHEMA_FILE).unlink(missing_ok=True)
        shutil.rmtree(self.root / "shard", ignore_errors=True)
        self._schema = None

    def _vector_params(self, f: VectorField) -> Any:
        layout = vector_layout(f, native_quantization=True, vectors_on_disk=self.vectors_on_disk, passage_points=True)
        quantization = {
            Precision.FLOAT32: None,
            Precision.INT8: qe.ScalarQuantizationConfig(qe.ScalarType.Int8, always_ram=True),
            Precision.BINARY: qe.BinaryQuantizationConfig(
                always_ram=True,
                query_encoding=qe.BinaryQuantizationQueryEncoding.Scalar8Bits if layout.query_8bit else None,
            ),
        }[layout.quantization]
        multi = layout.multivector
        return qe.EdgeVectorParams(
            size=layout.size,
            distance=qe.Distance.Cosine if layout.cosine else qe.Distance.Dot,
            on_disk=layout.on_disk,
            quantization_config=quantization,
            multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim) if multi else None,
            hnsw_config=qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10_000) if multi else None,
            datatype=EDGE_DATATYPES[layout.datatype] if multi else None,
        )

    # --- writes -------------------------------------------------------------------------------
    def _upsert(
        self, documents: list[Document], vectors: dict[str, Embeddings], passage_maps: list[PassageMap] | None
    ) -> None:
        fields = self._require_schema().fields
        passage_fields = [f for f in fields if f.per_passage]
        points = [
            qe.Point(
                point_id(doc.id),
                {
                    f.name: vector_values(f, vectors[f.name], row, qe.SparseVector, False)
                    for f in fields
                    if not f.per_passage
                },
                payload_of(doc, passage_maps[row] if passage_maps else None),
            )
            for row, doc in enumerate(documents)
        ]
        if passage_fields:  # a document's old passages go first: a shorter text leaves none behind
            self._write(qe.UpdateOperation.delete_points_by_filter(self._passages_of([d.id for d in documents])))
            points += [
                qe.Point(i, vector, payload)
                for i, vector, payload in passage_points(documents, vectors, passage_fields, qe.SparseVector)
            ]
        self._write(qe.UpdateOperation.upsert_points(points))

    @staticmethod
    def _passages_of(ids: list[str]) -> Any:
        """The passage points of the documents `ids`."""
        return qe.Filter(must=[qe.FieldCondition(key=PASSAGE_OF_KEY, match=qe.MatchAny(any=ids))])

    def _documents_only(self, qfilter: Any = None) -> Any:
        """`qfilter` narrowed to document points, where the collection also holds passage points."""
        if self._passages is None:
            return qfilter
        documents = qe.IsEmptyCondition(PASSAGE_OF_KEY)
        return qe.Filter(must=[documents, qfilter] if qfilter is not None else [documents])

    def _write(self, operation: Any) -> None:
        self._shard.update(operation)
        if not self.write_ahead_log:  # nothing else holds the write until the segments are flushed
            self._shard.flush()

    def _delete(self, ids: list[str]) -> int:
        existing = [r.id for r in self._shard.retrieve([point_id(i) for i in ids], False, False)]
        if existing:
            self._write(qe.UpdateOperation.delete_points(existing))
            if self._passages is not None:
                self._write(qe.UpdateOperation.delete_points_by_filter(self._passages_of(ids)))
        return len(existing)

    def _delete_where(self, filter: Filter) -> int:
        qfilter = qdrant_filter(filter, FILTERS)
        matching = int(self._shard.count(qe.CountRequest(exact=True, filter=self._documents_only(qfilter))))
        if matching:  # passage points carry their document's metadata: the same filter takes them too
            self._write(qe.UpdateOperation.delete_points_by_filter(qfilter))
        return matching

    def count(self) -> int:
        if self._shard is None:
            return 0
        return int(self._shard.count(qe.CountRequest(exact=True, filter=self._documents_only())))

    def get(self, ids: Sequence[str]) -> list[Document]:
        if self._shard is None:
            return []
        found = {r.payload["doc_id"]: r.payload for r in self._shard.retrieve([point_id(i) for i in ids], True, False)}
        return [document_of(found[i]) for i in ids if i in found]

    def _stored_vectors(self, ids: list[str], field: str) -> dict[str, np.ndarray]:
        if self._shard is None:
            return {}
        if self._require_schema()[field].per_passage:
            return self._passage_vectors(ids, field)
        records = self._shard.retrieve([point_id(i) for i in ids], ["doc_id"], [field])
        return {r.payload["doc_id"]: np.asarray(r.vector[field]) for r in records if isinstance(r.vector, dict)}

    def _passage_vectors(self, ids: list[str], field: str) -> dict[str, np.ndarray]:
        """Each document's passage vectors in `field`, read from its passage points in order."""
        rows, offset = PassageRows(), None
        while True:
            records, offset = self._shard.scroll(
                qe.ScrollRequest(
                    offset=offset,
                    limit=1024,
                    filter=self._passages_of(ids),
                    with_payload=[PASSAGE_OF_KEY, PASSAGE_INDEX_KEY],
                    with_vector=[field],
                )
            )
            for r in records:
                rows.add(r.payload, r.vector[field])
            if offset is None:
                return rows.by_document()

    def optimize(self) -> None:
        if self._shard is not None:
            self._shard.optimize()

    def close(self) -> None:
        try:
            if self._shard is not None:
                self._shard.flush()
                self._shard.close()
                self._shard = None
        finally:
            if self._claim is not None:
                self._claim.release()
                self._claim = None

    # --- search -------------------------------------------------------------------------------
    def _search(self, plan: Plan, filter: Filter | None) -> list[Hit]:
        qfilter = qdrant_filter(filter, FILTERS)
        query = (
            executor.by_stage(plan, qfilter, self._query, self._restricted, document_points)
            if needs_stages(plan, sharded=False, passages=self._passages)
            else self._query(plan, qfilter)
        )
        return executor.run(query, self._send)

    @staticmethod
    def _restricted(qfilter: Any, ids: list[str]) -> Any:
        """`qfilter` narrowed to the documents `ids`: their points and their passage points."""
        documents = qe.HasIdCondition({point_id(i) for i in ids})
        passages = qe.FieldCondition(key=PASSAGE_OF_KEY, match=qe.MatchAny(any=ids))
        only = qe.Filter(should=[documents, passages])
        return qe.Filter(must=[only, qfilter] if qfilter is not None else [only])

    def _query(self, plan: Plan, qfilter: Any, documents: bool = True) -> executor.Steps[list[Hit]]:
        return one_query(plan, qfilter, self._passages, documents)

    @property
    def _passages(self) -> Schema | None:
        """The schema where the collection keeps passages as points of their own (see the module's
        docstring), else None."""
        schema = self._require_schema()
        return schema if schema.passage_map_field is not None else None

    def _send(self, asks: list[executor.Ask[Request]]) -> list[list[Hit]]:
        """The engine runs in this process: one query after another."""
        schema = self._require_schema()
        answers = []
        for ask in asks:
            request, read = ask.request, hit_reader(ask.request)
            if isinstance(request, DocumentPoints):
                records = self._shard.retrieve([point_id(i) for i in request.ids], payload_wanted(request), False)
                answers.append([read(r.payload, 0.0) for r in records])
                continue
            query = query_of(request.plan, schema, native_quantization=True)
            if isinstance(request, PassageSearch):
                query = query.scaled(request.factor)
            points = self._shard.query(
                request_of(query, request.qfilter, ask.limit, self._api, payload_wanted(request))
            )
            answers.append([read(p.payload, p.score) for p in points])
        return answers

    @property
    def _api(self) -> RequestClasses:
        return RequestClasses(
            request=lambda vector, stages, where, params, limit, payload: qe.QueryRequest(
                **vector, prefetches=stages, filter=where, params=params, limit=limit, with_payload=payload
            ),
            stage=lambda vector, stages, where, params, limit: qe.Prefetch(
                **vector, prefetches=stages, filter=where, params=params, limit=limit
            ),
            vector=lambda node: {"query": self._nearest(node)},
            params=search_params,
        )

    def _nearest(self, query: Query) -> Any:
        f = self._require_schema()[query.field]
        values = vector_values(f, query.vector, 0, qe.SparseVector, False, query=True, passage_points=True)
        return qe.Query.Nearest(values, using=f.name)


def search_params(quantized: QuantizedSearch | None) -> qe.SearchParams | None:
    if quantized is None:
        return None
    return qe.SearchParams(
        quantization=qe.QuantizationSearchParams(rescore=quantized.rescore, oversampling=quantized.oversampling)
    )
