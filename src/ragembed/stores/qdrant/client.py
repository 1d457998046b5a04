"""Qdrant through qdrant-client: a Qdrant server (or cluster), or qdrant-client's local mode.

Mapping (one named vector per ragembed field, all in one collection):
  dense float32      named vector, cosine or dot, HNSW
  int8 / binary      server: a named vector with Qdrant's scalar (int8) or binary quantization
                     kept in RAM, the float32 originals on disk; "quantized search rescored with
                     float32" becomes one query with QuantizationSearchParams(rescore, oversampling);
                     an asymmetric binary field sets query_encoding=scalar8bits (the query at 8 bits
                     against the 1-bit documents)
                     local mode: qdrant-client's local mode has no quantization (it is brute
                     force). ragembed warns and serves these fields client-side: it stores the
                     de-quantized vectors, so rankings equal the memory store's, without the
                     memory saving
  multi-vector       named multivector with the MAX_SIM comparator, HNSW off (m=0): it is scored
                     exactly, by full scan or as a rescoring stage, as Qdrant recommends; an
                     int8 / binary one (server only) adds the quantization to the token vectors,
                     kept on disk, and its Rescore step is one query (prefetch + quantized
                     MaxSim + rescoring of the best with the originals)
  passages           a per-passage field: each passage a point of its own (its document's id,
                     position and metadata in its payload; a keyword payload index on the
                     document id), HNSW-indexed and quantized like a dense field, beside the
                     document's point; searched by mapping.by_passages (a few passages a document
                     wanted, more until the answer is exact, each document's best, then the
                     documents' points unless it is a candidate stage: both in the batch
                     requests), so a document scores by its best passage as with MaxSim.
                     Writing a document deletes its old passages first.
                     Local mode (brute force everywhere, and unable to score a multivector over
                     points without one) keeps a document's passages as one multivector instead
  sparse             sparse vector with Modifier.IDF when the field asks for IDF (BM25). Qdrant
                     computes that IDF from each shard's own documents, so a sharded collection
                     would rank differently from a single node: there ragembed keeps each
                     document's terms in an indexed payload field and weights the query with
                     IDF over the whole collection (exact counts: N and one df per query term),
                     so every shard layout ranks exactly like one node
  plans              Query API: prefetch stages and native rescoring in one query; fusions (and,
                     on sharded collections, rescoring stages) one query per stage, fused and
                     cut here by ragembed's own rules (see mapping.needs_stages)
  filters            payload filters on "metadata.<key>"
The ragembed schema (calibration, encoder state) is stored in the collection's metadata.
On a cluster: shard_number and replication_factor are fixed when the collection is created
(opening it with others is refused); every write waits until write_consistency_factor replicas
(default 1) have applied it, so writes go on while one replica's node is down (Qdrant marks that
replica dead and copies an active one back to it when the node returns, reading only from active
replicas meanwhile); reads use one active replica (Qdrant's default consistency).
Every engine failure becomes a StoreError that says what happened: the server cannot be reached,
refused the key, or answered with an error (a peer of the cluster being down, for instance).
"""

from __future__ import annotations

import asyncio
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ragembed.errors import MissingDependencyError, RagembedError, SchemaMismatchError, StoreError
from ragembed.search import executor
from ragembed.search.capabilities import Capabilities
from ragembed.search.filters import Filter
from ragembed.search.plan import Plan, VectorSearch
from ragembed.search.schema import Schema, VectorField
from ragembed.stores import folders
from ragembed.stores.base import VectorStore
from ragembed.stores.ids import point_id
from ragembed.stores.qdrant.mapping import (
    PASSAGE_INDEX_KEY,
    PASSAGE_OF_KEY,
    QDRANT_FILTER_KEYS,
    SCHEMA_KEY,
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
from ragembed.types import (
    Datatype,
    Document,
    EmbeddingKind,
    Embeddings,
    Hit,
    MultiVectorEmbeddings,
    PassageMap,
    Precision,
    SparseEmbeddings,
    SparsePassageEmbeddings,
    check_positive,
    narrow,
)

try:
    import grpc
    from qdrant_client import AsyncQdrantClient, QdrantClient, models
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError.for_extra("qdrant-client", "qdrant") from exc

STORE_LOCAL = "qdrant-local"
# Queries per batch request: a few hundred ColBERT queries (about 4,000 floats each as JSON) stay
# well under Qdrant's 32 MB request limit and the client's timeout.
BATCH_REQUESTS = 256
TERMS_PREFIX = "ragembed_terms_"  # payload key of a sparse field's terms, where ragembed computes the IDF
# IDF weights of a search's sparse queries, by (field, the query's terms as bytes), computed before
# its queries are sent (the counts are requests of their own)
Weights = dict[tuple[str, bytes], np.ndarray]
T = TypeVar("T")
FILTERS = FilterClasses(models.Filter, models.FieldCondition, models.MatchValue, models.MatchAny, models.Range)


REQUEST_BUDGET = 8 << 20  # bytes of JSON per upload request; Qdrant refuses requests over 32 MB


def upload_batch_size(documents: list[Document], vectors: dict[str, Embeddings]) -> int:
    """Points per upload request: 128, or fewer where the largest point's JSON (about 20 bytes a
    float; ColBERT token vectors make a point 0.4 MB) would push a request past REQUEST_BUDGET."""
    floats = 0
    for emb in vectors.values():
        if isinstance(emb, MultiVectorEmbeddings):
            floats += max(v.size for v in emb.vectors)
        elif isinstance(emb, SparseEmbeddings):
            floats += 2 * max(len(i) for i in emb.indices)
        elif isinstance(emb, SparsePassageEmbeddings):  # one point a passage: the largest passage counts
            floats += 2 * max(len(i) for held in emb.passages for i in held.indices)
        else:
            floats += emb.data.shape[1]
    largest = 20 * floats + 4 * max(len(d.text) for d in documents) + 2048
    return max(1, min(128, REQUEST_BUDGET // largest))


def check_vectors_on_disk(collection: str, schema: Schema, stored: Any, asked: bool) -> None:
    """Refuse to open a collection whose full-vector fields were made with the other on_disk."""
    full = [f.name for f in schema.fields if f.kind is not EmbeddingKind.SPARSE and f.precision is Precision.FLOAT32]
    other = [n for n in full if bool(stored[n].on_disk) != asked]
    if other:
        raise SchemaMismatchError(
            f"Qdrant collection {collection!r} keeps the fields {other} "
            f"{'in RAM' if asked else 'on disk'}, not {'on disk' if asked else 'in RAM'} as vectors_on_disk={asked} "
            "asks; open it without vectors_on_disk, or index into another collection"
        )


class QdrantStore(VectorStore):
    """One Qdrant collection, on a server (`url`) or in qdrant-client's local mode (`path`).

    >>> QdrantStore(url="http://localhost:6333", collection="docs")      # a server or cluster
    >>> QdrantStore(path=":memory:", collection="docs")                   # local mode, in memory
    >>> QdrantStore(path="./qdrant-local", collection="docs")             # local mode, on disk

    Args:
        collection: the Qdrant collection.
        url: a server or cluster node ("http://localhost:6333"); or
        path: qdrant-client's local mode, ":memory:" or a folder the store owns.
        api_key, https, timeout, prefer_grpc, grpc_port: passed to qdrant-client.
        shard_number, replication_factor, write_consistency_factor: a new collection's layout
            on a cluster; an existing collection with another layout is refused.
        upload_parallel, upload_retries: qdrant-client's upload_points workers and retries.
        indexing_threshold_kb: segment size from which the server builds HNSW indexes.
        vectors_on_disk: a new collection keeps its float32 dense and multi-vector fields
            memory-mapped from disk instead of loaded into RAM (Qdrant's on_disk; searches read
            them through the OS page cache, which keeps what they touch). Once indexed, the
            server holds about 1,675 fewer resident bytes a 384-dim document (1.6 GiB at 1M,
            15.6 GiB at 10M per copy of the data; docs/qdrant.md). Quantized fields always keep
            their float32 originals on disk. An existing collection made with the other setting
            is refused.
    """

    def __init__(
        self,
        collection: str = "default",
        *,
        url: str | None = None,
        path: str | None = None,
        api_key: str | None = None,
        https: bool | None = None,
        timeout: int | None = None,
        prefer_grpc: bool = False,
        grpc_port: int | None = None,
        shard_number: int | None = None,
        replication_factor: int | None = None,
        write_consistency_factor: int | None = None,
        upload_parallel: int = 1,
        upload_retries: int = 3,
        indexing_threshold_kb: int | None = None,
        vectors_on_disk: bool | None = None,
    ) -> None:
        if (url is None) == (path is None):
            raise StoreError("give QdrantStore either url= (a server) or path= (local mode: ':memory:' or a folder)")
        server_only = {
            "api_key": api_key,
            "https": https,
            "timeout": timeout,
            "prefer_grpc": prefer_grpc or None,
            "grpc_port": grpc_port,
            "shard_number": shard_number,
            "replication_factor": replication_factor,
            "write_consistency_factor": write_consistency_factor,
            "indexing_threshold_kb": indexing_threshold_kb,
            "upload_parallel": upload_parallel if upload_parallel != 1 else None,
            "vectors_on_disk": vectors_on_disk,  # local mode holds every vector in numpy arrays
        }
        ignored = [name for name, value in server_only.items() if value is not None]
        if path is not None and ignored:
            raise StoreError(
                f"{', '.join(ignored)} only apply to a Qdrant server; local mode cannot honour them. Drop them, "
                "or give url= (a server) or use the embedded engine (QdrantEdgeStore) for HNSW settings"
            )
        self.collection = collection
        self.local = path is not None
        # A server: AsyncQdrantClient, native quantization; local mode: a thread, client-side
        # (float16 fields there are rounded to half floats before they are sent). qdrant-client
        # 1.18 spells no TurboQuant datatype, so turbo8/turbo4 stay Qdrant Edge's.
        self.capabilities = Capabilities(
            native_async=not self.local,
            native_quantization=not self.local,
            datatypes=frozenset({Datatype.FLOAT32, Datatype.FLOAT16}),
            quantized_multivectors=not self.local,  # local mode stores one (client-side) form a field
            sparse_passages=not self.local,  # local mode keeps a document's passages in one multivector
            filter_keys=QDRANT_FILTER_KEYS,
        )
        self.location = url or path
        for name, value in (
            ("shard_number", shard_number),
            ("replication_factor", replication_factor),
            ("write_consistency_factor", write_consistency_factor),
        ):
            if value is not None:
                check_positive(name, value, integer=True)
        self.shard_number, self.replication_factor = shard_number, replication_factor
        self.write_consistency_factor = write_consistency_factor
        self._corpus_idf: set[str] = set()  # sparse fields whose IDF ragembed computes (sharded collections)
        self._shards = 1
        self.upload_parallel, self.upload_retries = upload_parallel, upload_retries
        self.indexing_threshold_kb = indexing_threshold_kb
        self.vectors_on_disk = vectors_on_disk
        # Local mode searches with numpy in this process: one at a time, as in the memory store
        # (concurrent BLAS calls oversubscribe the cores); a server needs no such care.
        self._one_search = threading.Lock() if self.local else nullcontext()
        self._server_options: dict[str, Any] = {
            "url": url,
            "api_key": api_key,
            "https": https,
            "timeout": timeout,
            "prefer_grpc": prefer_grpc,
            "grpc_port": grpc_port or 6334,
        }
        # One AsyncQdrantClient per event loop (its connections belong to the loop that opened them).
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncQdrantClient] = (
            weakref.WeakKeyDictionary()
        )
        folder = Path(path).expanduser() if path is not None and self.local and path != ":memory:" else None
        if folder is not None:
            folders.check_can_open(folder, STORE_LOCAL)  # qdrant-client would write into any folder
        try:
            if self.local:
                self.client = QdrantClient(location=":memory:") if path == ":memory:" else QdrantClient(path=path)
            else:
                self.client = QdrantClient(**self._server_options)
        except RuntimeError as exc:
            if "already accessed" in str(exc):
                raise StoreError(
                    f"the Qdrant local-mode folder {path} is open in another process (local mode allows one "
                    "at a time); close that process, use another folder, or run a Qdrant server "
                    "(docker compose up qdrant) for concurrent access"
                ) from exc
            raise StoreError(f"cannot open Qdrant at {self.location}: {exc}") from exc
        except PermissionError as exc:
            raise StoreError(
                f"cannot write the Qdrant local-mode folder {path} ({exc.strerror}): local mode takes a lock "
                "file in its folder even to search. Copy the folder somewhere writable, or fix its permissions"
            ) from exc
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
        ) as exc:  # a damaged meta.json, an unreadable folder
            raise StoreError(f"cannot open the Qdrant local-mode folder {path}: {exc}") from exc
        try:
            if folder is not None and folders.read_marker(folder) is None:
                folders.write_marker(folder, STORE_LOCAL, format=1)  # qdrant-client holds the folder's lock now
            self._schema = self._read_schema()
        except BaseException:
            self.client.close()
            raise

    def __repr__(self) -> str:  # never shows the API key
        return f"QdrantStore({'local' if self.local else 'server'}={self.location!r}, collection={self.collection!r})"

    # --- schema -------------------------------------------------------------------------------
    @property
    def schema(self) -> Schema | None:
        return self._schema

    def _read_schema(self) -> Schema | None:
        if not self._call(
            "check whether the collection exists", lambda: self.client.collection_exists(self.collection)
        ):
            return None
        info = self._call("read the collection", lambda: self.client.get_collection(self.collection))
        metadata = info.config.metadata or {}
        if SCHEMA_KEY not in metadata:
            raise StoreError(
                f"Qdrant collection {self.collection!r} was not created by ragembed (no {SCHEMA_KEY} in its "
                "metadata); pick another collection name"
            )
        try:
            schema = Schema.from_dict(metadata[SCHEMA_KEY])
        except (ValueError, KeyError, TypeError, AttributeError, RagembedError) as exc:
            raise StoreError(
                f"Qdrant collection {self.collection!r}: its {SCHEMA_KEY} metadata is not a ragembed schema "
                f"({type(exc).__name__}: {exc}); it was changed by another program. ragembed leaves it as it is"
            ) from exc
        params = info.config.params
        stored = {
            "shard_number": params.shard_number,
            "replication_factor": params.replication_factor,
            "write_consistency_factor": params.write_consistency_factor,
        }
        asked = {
            "shard_number": self.shard_number,
            "replication_factor": self.replication_factor,
            "write_consistency_factor": self.write_consistency_factor,
        }
        differing = {k: v for k, v in asked.items() if v is not None and v != stored[k]}
        if differing and not self.local:
            raise SchemaMismatchError(
                f"Qdrant collection {self.collection!r} was created with "
                f"{ {k: stored[k] for k in differing} }, not {differing}; open it without these settings, or "
                "index into another collection"
            )
        if self.vectors_on_disk is not None and not self.local:
            check_vectors_on_disk(self.collection, schema, params.vectors, self.vectors_on_disk)
        vectors = params.vectors if isinstance(params.vectors, dict) else {}
        multivectors = {name for name, v in vectors.items() if getattr(v, "multivector_config", None)}
        if not self.local and any(f.per_passage and f.name in multivectors for f in schema.fields):
            raise StoreError(
                f"Qdrant collection {self.collection!r} keeps its passages as one multivector a document (an "
                "earlier ragembed's layout), which this version does not search; drop it and index the "
                "documents again (CLI: ragembed index --recreate)"
            )
        self._corpus_idf = self._fields_with_corpus_idf(schema, info)
        self._shards = params.shard_number or 1
        return schema

    @staticmethod
    def _fields_with_corpus_idf(schema: Schema, info: Any) -> set[str]:
        """IDF fields that Qdrant does not weight itself (created without its modifier, sharded)."""
        sparse = info.config.params.sparse_vectors or {}
        return {
            f.name
            for f in schema.fields
            if f.kind is EmbeddingKind.SPARSE
            and f.idf
            and f.name in sparse
            and sparse[f.name].modifier != models.Modifier.IDF
        }

    def _create(self, schema: Schema) -> None:
        dense = {f.name: self._vector_params(f) for f in schema.fields if f.kind is not EmbeddingKind.SPARSE}
        sparse = {
            f.name: models.SparseVectorParams(modifier=models.Modifier.IDF if f.idf else None)
            for f in schema.fields
            if f.kind is EmbeddingKind.SPARSE
        }
        if self.local and any(f.precision is not Precision.FLOAT32 for f in schema.fields):
            warnings.warn(
                "Qdrant local mode has no native quantization or HNSW: ragembed serves the int8/binary "
                "fields client-side (same ranking, no memory saving). Use a Qdrant server or the "
                "embedded engine (qdrant-edge:PATH) for native quantization.",
                stacklevel=3,
            )
        self._call(
            "create the collection",
            lambda: self.client.create_collection(
                self.collection,
                vectors_config=dense,
                sparse_vectors_config=sparse or None,
                shard_number=self.shard_number,
                replication_factor=self.replication_factor,
                write_consistency_factor=self.write_consistency_factor,
                optimizers_config=models.OptimizersConfigDiff(indexing_threshold=self.indexing_threshold_kb)
                if self.indexing_threshold_kb is not None
                else None,
                metadata={SCHEMA_KEY: schema.to_dict()},
            ),
        )
        if not self.local and any(f.per_passage for f in schema.fields):  # what deletes and restrictions filter on
            self._call(
                "index the passages' documents",
                lambda: self.client.create_payload_index(
                    self.collection, PASSAGE_OF_KEY, wait=True, field_schema=models.PayloadSchemaType.KEYWORD
                ),
            )
        if not self.local:
            info = self._call("read the collection", lambda: self.client.get_collection(self.collection))
            self._shards = info.config.params.shard_number or 1
            idf_fields = [f.name for f in schema.fields if f.kind is EmbeddingKind.SPARSE and f.idf]
            if idf_fields and self._shards > 1:
                self._weight_idf_over_the_collection(idf_fields)
        self._schema = schema

    def _weight_idf_over_the_collection(self, names: list[str]) -> None:
        """Qdrant's IDF modifier counts each shard's documents on its own; switch it off and index
        the terms instead, so that the query is weighted with counts over the whole collection."""
        self._call(
            "configure the sparse fields",
            lambda: self.client.update_collection(
                self.collection,
                sparse_vectors_config={n: models.SparseVectorParams(modifier=models.Modifier.NONE) for n in names},
            ),
        )
        for name in names:
            self._call(
                "index the sparse terms",
                lambda: self.client.create_payload_index(
                    self.collection,
                    TERMS_PREFIX + name,
                    wait=True,
                    field_schema=models.IntegerIndexParams(
                        type=models.IntegerIndexType.INTEGER, lookup=True, range=False
                    ),
                ),
            )
        self._corpus_idf = set(names)

    def _update_schema(self, schema: Schema) -> None:
        self.drop()  # only ever called on an empty collection
        self._create(schema)

    def drop(self) -> None:
        self._call("delete the collection", lambda: self.client.delete_collection(self.collection))
        self._schema = None
        self._corpus_idf = set()

    def _vector_params(self, f: VectorField) -> models.VectorParams:
        layout = vector_layout(
            f,
            native_quantization=not self.local,
            vectors_on_disk=bool(self.vectors_on_disk),
            passage_points=not self.local,
        )
        quantization = {
            Precision.FLOAT32: None,
            Precision.INT8: models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, always_ram=True)
            ),
            Precision.BINARY: models.BinaryQuantization(
                binary=models.BinaryQuantizationConfig(
                    always_ram=True,
                    query_encoding=models.BinaryQuantizationQueryEncoding.SCALAR8BITS if layout.query_8bit else None,
                )
            ),
        }[layout.quantization]
        multi = layout.multivector
        return models.VectorParams(
            size=layout.size,
            distance=models.Distance.COSINE if layout.cosine else models.Distance.DOT,
            on_disk=layout.on_disk,
            quantization_config=quantization,
            hnsw_config=models.HnswConfigDiff(m=0) if multi else None,
            multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
            if multi
            else None,
            datatype=models.Datatype.FLOAT16 if layout.datatype is Datatype.FLOAT16 else None,
        )

    # --- writes -------------------------------------------------------------------------------
    def _upsert(
        self, documents: list[Document], vectors: dict[str, Embeddings], passage_maps: list[PassageMap] | None
    ) -> None:
        fields = self._require_schema().fields
        passage_fields = [f for f in fields if f.per_passage] if self._passage_points else []
        # The terms of a sparse field whose IDF ragembed computes go into its points' payloads.
        on_passages = {f.name for f in passage_fields}
        terms = {name: TERMS_PREFIX + name for name in self._corpus_idf}
        points = [
            models.PointStruct(
                id=point_id(doc.id),
                payload=payload_of(doc, passage_maps[row] if passage_maps else None)
                | {
                    key: narrow(vectors[name], SparseEmbeddings).indices[row].tolist()
                    for name, key in terms.items()
                    if name not in on_passages
                },
                vector={
                    f.name: vector_values(f, vectors[f.name], row, self._sparse, self.local)
                    for f in fields
                    if f not in passage_fields
                },
            )
            for row, doc in enumerate(documents)
        ]
        if passage_fields:  # a document's old passages go first: a shorter text leaves none behind
            self._delete_passages([d.id for d in documents])
            points += [
                models.PointStruct(id=point_id, vector=vector, payload=payload)
                for point_id, vector, payload in passage_points(
                    documents, vectors, passage_fields, self._sparse, {n: terms[n] for n in on_passages & set(terms)}
                )
            ]
        if self.local:
            self._call("upsert", lambda: self.client.upsert(self.collection, points, wait=True))
        else:  # batched, parallel, retried with backoff by qdrant-client
            self._call(
                "upsert",
                lambda: self.client.upload_points(
                    self.collection,
                    points,
                    batch_size=upload_batch_size(documents, vectors),
                    parallel=self.upload_parallel,
                    max_retries=self.upload_retries,
                    wait=True,
                ),
            )

    @property
    def _passage_points(self) -> bool:
        """Whether the collection keeps passages as points of their own: on a server, where HNSW
        serves them; local mode searches every point by brute force (and cannot score a multivector
        field over points without it), so it keeps a document's passages as one multivector."""
        return not self.local and any(f.per_passage for f in self._require_schema().fields)

    def _delete_passages(self, ids: list[str]) -> None:
        self._call("delete the passages", lambda: self.client.delete(self.collection, passages_of(ids), wait=True))

    def _documents_only(self, qfilter: Any = None) -> Any:
        """`qfilter` narrowed to document points, where the collection also holds passage points."""
        if not self._passage_points:
            return qfilter
        documents = models.IsEmptyCondition(is_empty=models.PayloadField(key=PASSAGE_OF_KEY))
        return models.Filter(must=[documents, qfilter] if qfilter is not None else [documents])

    def _delete(self, ids: list[str]) -> int:
        existing = self._call(
            "find the documents to delete",
            lambda: self.client.retrieve(self.collection, [point_id(i) for i in ids], with_payload=False),
        )
        if existing:
            self._call(
                "delete",
                lambda: self.client.delete(
                    self.collection, models.PointIdsList(points=[p.id for p in existing]), wait=True
                ),
            )
            if self._passage_points:
                self._delete_passages(ids)
        return len(existing)

    def _delete_where(self, filter: Filter) -> int:
        qfilter = qdrant_filter(filter, FILTERS)
        matching = self._count(self._documents_only(qfilter))
        if matching:  # passage points carry their document's metadata: the same filter takes them too
            self._call(
                "delete", lambda: self.client.delete(self.collection, models.FilterSelector(filter=qfilter), wait=True)
            )
        return matching

    def count(self) -> int:
        return self._count(self._documents_only()) if self._schema is not None else 0

    def _count(self, qfilter: Any) -> int:
        return self._call("count", lambda: self.client.count(self.collection, count_filter=qfilter, exact=True)).count

    def get(self, ids: Sequence[str]) -> list[Document]:
        if self._schema is None:
            return []
        points = self._call(
            "read documents",
            lambda: self.client.retrieve(self.collection, [point_id(i) for i in ids], with_payload=True),
        )
        found = {p.payload["doc_id"]: p.payload for p in points if p.payload is not None}
        return [document_of(found[i]) for i in ids if i in found]

    def _stored_vectors(self, ids: list[str], field: str) -> dict[str, np.ndarray]:
        if self._passage_points and self._require_schema()[field].per_passage:
            return self._passage_vectors(ids, field)
        points = self._call(
            "read vectors",
            lambda: self.client.retrieve(
                self.collection, [point_id(i) for i in ids], with_payload=["doc_id"], with_vectors=[field]
            ),
        )
        return {
            p.payload["doc_id"]: np.asarray(p.vector[field]) for p in points if p.payload and isinstance(p.vector, dict)
        }

    def _passage_vectors(self, ids: list[str], field: str) -> dict[str, np.ndarray]:
        """Each document's passage vectors in `field`, read from its passage points in order."""
        rows, offset = PassageRows(), None
        while True:
            records, offset = self._call(
                "read passage vectors",
                lambda: self.client.scroll(
                    self.collection,
                    scroll_filter=passages_of(ids).filter,
                    limit=1024,
                    offset=offset,
                    with_payload=[PASSAGE_OF_KEY, PASSAGE_INDEX_KEY],
                    with_vectors=[field],
                ),
            )
            for r in records:
                if r.payload is not None and isinstance(r.vector, dict):
                    rows.add(r.payload, r.vector[field])
            if offset is None:
                return rows.by_document()

    def other_collections(self) -> list[str] | None:
        try:
            return [c.name for c in self.client.get_collections().collections if c.name != self.collection]
        except Exception:
            return None

    def close(self) -> None:
        # Async clients of other event loops cannot be closed from here; their connections close
        # when those loops are gone.
        self._async_clients.clear()
        self.client.close()

    async def aclose(self) -> None:
        client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()
        self.close()

    def _async_client(self) -> AsyncQdrantClient:
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = self._async_clients[loop] = AsyncQdrantClient(**self._server_options)
        return client

    # --- search -------------------------------------------------------------------------------
    def _search(self, plan: Plan, filter: Filter | None) -> list[Hit]:
        return self._search_many([plan], filter)[0]

    def _search_many(self, plans: list[Plan], filter: Filter | None) -> list[list[Hit]]:
        """Every plan's stages side by side: one batch query request per round for all of them."""
        qfilter = qdrant_filter(filter, FILTERS)
        # One count after another: the sync client fails under concurrent requests from threads
        # ("Bad file descriptor", qdrant-client#614); the async path sends them at once.
        counts, weigh = self._idf_counts(plans)
        weights = weigh([self._count(f) for f in counts])
        steps = executor.together([self._steps(plan, qfilter) for plan in plans])
        return executor.run(steps, lambda asks: self._send(asks, weights))

    async def _asearch(self, plan: Plan, filter: Filter | None) -> list[Hit]:
        return (await self._asearch_many([plan], filter))[0]

    async def _asearch_many(self, plans: list[Plan], filter: Filter | None) -> list[list[Hit]]:
        if self.local:  # local mode has no async engine: a worker thread runs the sync search
            return await asyncio.to_thread(self._search_many, plans, filter)
        client = self._async_client()
        qfilter = qdrant_filter(filter, FILTERS)
        counts, weigh = self._idf_counts(plans)

        async def count(qfilter: Any) -> int:
            with self._engine_errors("count"):
                answer = await client.count(self.collection, count_filter=qfilter, exact=True)
            return answer.count

        weights = weigh(list(await asyncio.gather(*(count(f) for f in counts))))

        async def send(asks: list[executor.Ask[Any]]) -> list[list[Hit]]:
            responses = []
            for chunk in batches(asks):
                requests = [self._request(ask, weights) for ask in chunk]
                with self._engine_errors("search"):
                    responses += await client.query_batch_points(self.collection, requests)
            return hits_of(asks, responses)

        return await executor.arun(executor.together([self._steps(plan, qfilter) for plan in plans]), send)

    def _steps(self, plan: Plan, qfilter: Any) -> executor.Steps[list[Hit]]:
        if needs_stages(plan, sharded=self._shards > 1, passages=self._passages):
            return executor.by_stage(plan, qfilter, self._query, self._restricted, document_points)
        return self._query(plan, qfilter)

    def _query(self, plan: Plan, qfilter: Any, documents: bool = True) -> executor.Steps[list[Hit]]:
        return one_query(plan, qfilter, self._passages, documents)

    @property
    def _passages(self) -> Schema | None:
        """The schema where the collection keeps passages as points of their own, else None."""
        return self._require_schema() if self._passage_points else None

    @staticmethod
    def _restricted(qfilter: Any, ids: list[str]) -> Any:
        """`qfilter` narrowed to the documents `ids`: their points and their passage points."""
        documents = models.HasIdCondition(has_id=[point_id(i) for i in ids])
        passages = models.FieldCondition(key=PASSAGE_OF_KEY, match=models.MatchAny(any=ids))
        only = models.Filter(should=[documents, passages])
        return models.Filter(must=[only, qfilter] if qfilter is not None else [only])

    def _send(self, asks: list[executor.Ask[Any]], weights: Weights) -> list[list[Hit]]:
        """A batch of queries in requests of at most BATCH_REQUESTS (Qdrant's batch query API)."""
        responses = []
        with self._one_search:
            for chunk in batches(asks):
                requests = [self._request(ask, weights) for ask in chunk]
                responses += self._call("search", lambda: self.client.query_batch_points(self.collection, requests))
        return hits_of(asks, responses)

    def _request(self, ask: executor.Ask[Request], weights: Weights) -> models.QueryRequest:
        request = ask.request
        if isinstance(request, DocumentPoints):  # no query: the points themselves, by id
            ids = models.HasIdCondition(has_id=[point_id(i) for i in request.ids])
            return models.QueryRequest(
                filter=models.Filter(must=[ids]), limit=ask.limit, with_payload=payload_wanted(request)
            )
        query = query_of(request.plan, self._require_schema(), native_quantization=not self.local)
        if isinstance(request, PassageSearch):
            query = query.scaled(request.factor)
        api = RequestClasses(
            request=lambda vector, stages, where, params, limit, payload: models.QueryRequest(
                **vector, prefetch=stages, filter=where, params=params, limit=limit, with_payload=payload
            ),
            stage=lambda vector, stages, where, params, limit: models.Prefetch(
                **vector, prefetch=stages, filter=where, params=params, limit=limit
            ),
            vector=lambda node: {"query": self._query_vector(node, weights), "using": node.field},
            params=search_params,
        )
        made: models.QueryRequest = request_of(query, request.qfilter, ask.limit, api, payload_wanted(request))
        return made

    def _query_vector(self, query: Query, weights: Weights) -> Any:
        f = self._require_schema()[query.field]
        if f.name in self._corpus_idf:
            sparse = narrow(query.vector, SparseEmbeddings)
            terms = sparse.indices[0]
            idf = weights[(f.name, terms.tobytes())]
            return self._sparse(terms.tolist(), (sparse.values[0] * idf).tolist())
        return vector_values(
            f, query.vector, 0, self._sparse, self.local, query=True, passage_points=self._passage_points
        )

    def _idf_terms(self, plans: Sequence[Plan]) -> dict[tuple[str, bytes], np.ndarray]:
        """The query terms of every stage of `plans` on a field whose IDF ragembed computes."""
        found = {}
        for plan in plans:
            if isinstance(plan, VectorSearch) and plan.field in self._corpus_idf:
                terms = narrow(plan.query, SparseEmbeddings).indices[0]
                found[(plan.field, terms.tobytes())] = terms
            found |= self._idf_terms(plan.prefetch)
        return found

    def _idf_counts(self, plans: Sequence[Plan]) -> tuple[list[Any], Callable[[list[int]], Weights]]:
        """Qdrant's (and the memory store's) IDF of every sparse query of `plans` on a field whose
        IDF ragembed computes, with N and every df counted exactly over the whole collection,
        across all its shards: the count filters to send (the collection once, then each distinct
        term of a field once, however many queries hold it; Qdrant has no batch count), and how
        their counts, in that order, become the weights."""
        wanted = self._idf_terms(plans)
        if not wanted:
            return [], lambda counts: {}
        terms = sorted({(field, t) for (field, _), held in wanted.items() for t in held.tolist()})
        # N: the points that hold the field: documents (not their passage points), or for BM25 over
        # passages the passage points
        schema = self._require_schema()
        on_passages = {f: schema[f].per_passage for f, _ in wanted}
        points = {False: self._documents_only()}
        if any(on_passages.values()):
            passages = models.IsEmptyCondition(is_empty=models.PayloadField(key=PASSAGE_OF_KEY))
            points[True] = models.Filter(must_not=[passages])
        filters = list(points.values()) + [
            models.Filter(must=[models.FieldCondition(key=TERMS_PREFIX + field, match=models.MatchValue(value=t))])
            for field, t in terms
        ]

        def weigh(counts: list[int]) -> Weights:
            n, df = dict(zip(points, counts)), dict(zip(terms, counts[len(points) :]))
            return {
                key: corpus_idf(n[on_passages[key[0]]], [df[(key[0], t)] for t in held.tolist()])
                for key, held in wanted.items()
            }

        return filters, weigh

    @contextmanager
    def _engine_errors(self, what: str) -> Iterator[None]:
        """qdrant-client failures inside become StoreErrors saying what happened; one definition for
        the sync client's calls and the async client's awaits alike."""
        try:
            yield
        except Exception as exc:
            failure = self._failure(what, exc)
            if failure is None:
                raise
            raise failure from exc

    def _call(self, what: str, call: Callable[[], T]) -> T:
        """Run a qdrant-client call under _engine_errors."""
        with self._engine_errors(what):
            return call()

    def _failure(self, what: str, exc: Exception) -> StoreError | None:
        """The StoreError a failed qdrant-client call means, or None for an error that is not the engine's."""
        if isinstance(exc, UnexpectedResponse):
            return StoreError(self._refusal(what, exc.status_code, exc.content.decode(errors="replace")))
        if isinstance(exc, grpc.RpcError):
            code = exc.code() if callable(getattr(exc, "code", None)) else None
            details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return StoreError(self._unreachable(what, f"gRPC {code.name}: {details}"))
            status = {
                grpc.StatusCode.UNAUTHENTICATED: 401,
                grpc.StatusCode.PERMISSION_DENIED: 403,
                grpc.StatusCode.NOT_FOUND: 404,
            }.get(code, 500)
            return StoreError(self._refusal(what, status, f"gRPC {code.name if code else '?'}: {details}"))
        if isinstance(exc, (ResponseHandlingException, OSError)):
            return StoreError(self._unreachable(what, f"{type(exc).__name__}: {exc}"))
        return None

    def _unreachable(self, what: str, reason: str) -> str:
        return (
            f"cannot reach the Qdrant server at {self.location} to {what} ({reason[:300]}); start it "
            "(scripts/qdrant.sh start, or docker compose up -d qdrant), or check the URL"
        )

    def _refusal(self, what: str, status: int | None, reason: str) -> str:
        if status in (401, 403):
            hint = "; check the API key ($QDRANT_API_KEY or api_key=)"
        elif "read operations failed" in reason or "No active replica" in reason or "peer" in reason.lower():
            hint = (
                "; a peer of the cluster is down or unreachable, so the shards it holds cannot answer: "
                "restart it, or wait until it rejoins (GET /cluster lists the peers)"
            )
        else:
            hint = ""
        return (
            f"the Qdrant server at {self.location} could not {what} (collection {self.collection!r}): "
            f"HTTP {status}: {reason[:300]}{hint}"
        )

    @staticmethod
    def _sparse(indices: list[int], values: list[float]) -> models.SparseVector:
        return models.SparseVector(indices=indices, values=values)


def search_params(quantized: QuantizedSearch | None) -> models.SearchParams | None:
    if quantized is None:
        return None
    return models.SearchParams(
        quantization=models.QuantizationSearchParams(rescore=quantized.rescore, oversampling=quantized.oversampling)
    )


def batches(asks: list[executor.Ask[Any]]) -> list[list[executor.Ask[Any]]]:
    """`asks` in batch requests of at most BATCH_REQUESTS queries each."""
    return [asks[start : start + BATCH_REQUESTS] for start in range(0, len(asks), BATCH_REQUESTS)]


def hits_of(asks: Sequence[executor.Ask[Request]], responses: Sequence[Any]) -> list[list[Hit]]:
    """The hits of each response of a batch query, in order (a passage search's: its passages)."""
    return [[hit_reader(ask.request)(p.payload, p.score) for p in r.points] for ask, r in zip(asks, responses)]


def passages_of(ids: list[str]) -> models.FilterSelector:
    """The passage points of the documents `ids`."""
    condition = models.FieldCondition(key=PASSAGE_OF_KEY, match=models.MatchAny(any=ids))
    return models.FilterSelector(filter=models.Filter(must=[condition]))


def corpus_idf(n: int, df: Sequence[int]) -> np.ndarray:
    """Qdrant's (and the memory store's) IDF, ln(1 + (N - df + 0.5) / (df + 0.5))."""
    counts = np.array(df, dtype=np.float64)
    return np.log(1.0 + (n - counts + 0.5) / (counts + 0.5))
