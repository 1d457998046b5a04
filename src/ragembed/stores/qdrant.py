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
                     exactly, by full scan or as a rescoring stage, as Qdrant recommends
  sparse             sparse vector with Modifier.IDF when the field asks for IDF (BM25)
  plans              Query API: prefetch stages, RRF fusion (k passed so scores equal ragembed's)
  filters            payload filters on "metadata.<key>"
The ragembed schema (calibration, encoder state) is stored in the collection's metadata.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from ragembed.errors import MissingDependencyError, StoreError
from ragembed.stores.base import Fusion, Plan, Schema, VectorField, VectorStore
from ragembed.stores.filters import Condition
from ragembed.stores.qdrant_common import (
    SCHEMA_KEY,
    FilterClasses,
    document_of,
    hit_of,
    native_rescore,
    payload_of,
    point_id,
    qdrant_filter,
    vector_values,
)
from ragembed.stores.ranking import fetch_with_ties
from ragembed.types import Document, EmbeddingKind, Embeddings, Hit, Precision

try:
    from qdrant_client import QdrantClient, models
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError.for_extra("qdrant-client", "qdrant") from exc

FILTERS = FilterClasses(models.Filter, models.FieldCondition, models.MatchValue, models.MatchAny, models.Range)


class QdrantStore(VectorStore):
    """One Qdrant collection, on a server (`url`) or in qdrant-client's local mode (`path`).

    >>> QdrantStore(url="http://localhost:6333", collection="docs")      # a server or cluster
    >>> QdrantStore(path=":memory:", collection="docs")                   # local mode, in memory
    >>> QdrantStore(path="./qdrant-local", collection="docs")             # local mode, on disk
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
        shard_number: int | None = None,
        replication_factor: int | None = None,
        upload_parallel: int = 1,
        upload_retries: int = 3,
        indexing_threshold_kb: int | None = None,
    ) -> None:
        if (url is None) == (path is None):
            raise StoreError("give QdrantStore either url= (a server) or path= (local mode: ':memory:' or a folder)")
        server_only = {"api_key": api_key, "https": https, "timeout": timeout, "prefer_grpc": prefer_grpc or None,
                       "shard_number": shard_number, "replication_factor": replication_factor,
                       "indexing_threshold_kb": indexing_threshold_kb,
                       "upload_parallel": upload_parallel if upload_parallel != 1 else None}
        ignored = [name for name, value in server_only.items() if value is not None]
        if path is not None and ignored:
            raise StoreError(
                f"{', '.join(ignored)} only apply to a Qdrant server; local mode cannot honour them. Drop them, "
                "or give url= (a server) or use the embedded engine (QdrantEdgeStore) for HNSW settings"
            )
        self.collection = collection
        self.local = path is not None
        self.location = url or path
        self.shard_number, self.replication_factor = shard_number, replication_factor
        self.upload_parallel, self.upload_retries = upload_parallel, upload_retries
        self.indexing_threshold_kb = indexing_threshold_kb
        # Local mode searches with numpy in this process: one at a time, as in the memory store
        # (concurrent BLAS calls oversubscribe the cores); a server needs no such care.
        self._one_search = threading.Lock() if self.local else nullcontext()
        try:
            if self.local:
                self.client = QdrantClient(location=":memory:") if path == ":memory:" else QdrantClient(path=path)
            else:
                self.client = QdrantClient(url=url, api_key=api_key, https=https, timeout=timeout,
                                           prefer_grpc=prefer_grpc)
        except RuntimeError as exc:
            if "already accessed" in str(exc):
                raise StoreError(
                    f"the Qdrant local-mode folder {path} is open in another process (local mode allows one "
                    "at a time); close that process, use another folder, or run a Qdrant server "
                    "(docker compose up qdrant) for concurrent access"
                ) from exc
            raise StoreError(f"cannot open Qdrant at {self.location}: {exc}") from exc
        self._schema = self._read_schema()

    def __repr__(self) -> str:  # never shows the API key
        return f"QdrantStore({'local' if self.local else 'server'}={self.location!r}, collection={self.collection!r})"

    # --- schema -------------------------------------------------------------------------------
    @property
    def schema(self) -> Schema | None:
        return self._schema

    def _read_schema(self) -> Schema | None:
        try:
            if not self.client.collection_exists(self.collection):
                return None
            metadata = self.client.get_collection(self.collection).config.metadata or {}
        except (UnexpectedResponse, ResponseHandlingException, OSError) as exc:
            raise StoreError(
                f"cannot reach Qdrant at {self.location} ({exc}); start the server (docker compose up -d "
                "qdrant), or check the URL and QDRANT_API_KEY"
            ) from exc
        if SCHEMA_KEY not in metadata:
            raise StoreError(
                f"Qdrant collection {self.collection!r} was not created by ragembed (no {SCHEMA_KEY} in its "
                "metadata); pick another collection name"
            )
        return Schema.from_dict(metadata[SCHEMA_KEY])

    def _create(self, schema: Schema) -> None:
        dense = {f.name: self._vector_params(f) for f in schema.fields if f.kind is not EmbeddingKind.SPARSE}
        sparse = {f.name: models.SparseVectorParams(modifier=models.Modifier.IDF if f.idf else None)
                  for f in schema.fields if f.kind is EmbeddingKind.SPARSE}
        if self.local and any(f.precision is not Precision.FLOAT32 for f in schema.fields):
            warnings.warn(
                "Qdrant local mode has no native quantization or HNSW: ragembed serves the int8/binary "
                "fields client-side (same ranking, no memory saving). Use a Qdrant server or the "
                "embedded engine (qdrant-edge:PATH) for native quantization.", stacklevel=3)
        self.client.create_collection(
            self.collection, vectors_config=dense, sparse_vectors_config=sparse or None,
            shard_number=self.shard_number, replication_factor=self.replication_factor,
            optimizers_config=models.OptimizersConfigDiff(indexing_threshold=self.indexing_threshold_kb)
            if self.indexing_threshold_kb is not None else None,
            metadata={SCHEMA_KEY: schema.to_dict()})
        self._schema = schema

    def _update_schema(self, schema: Schema) -> None:
        self.drop()  # only ever called on an empty collection
        self._create(schema)

    def drop(self) -> None:
        self.client.delete_collection(self.collection)
        self._schema = None

    def _vector_params(self, f: VectorField) -> models.VectorParams:
        distance = models.Distance.COSINE if f.distance == "cosine" else models.Distance.DOT
        if f.kind is EmbeddingKind.MULTIVECTOR:
            return models.VectorParams(
                size=f.dim, distance=distance, hnsw_config=models.HnswConfigDiff(m=0),
                multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM))
        if f.precision is Precision.FLOAT32 or self.local:
            return models.VectorParams(size=f.dim, distance=distance)
        quantization = (models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(
                            type=models.ScalarType.INT8, always_ram=True))
                        if f.precision is Precision.INT8 else
                        models.BinaryQuantization(binary=models.BinaryQuantizationConfig(
                            always_ram=True, query_encoding=models.BinaryQuantizationQueryEncoding.SCALAR8BITS
                            if f.asymmetric else None)))
        return models.VectorParams(size=f.dim, distance=distance, on_disk=True, quantization_config=quantization)

    # --- writes -------------------------------------------------------------------------------
    def _upsert(self, documents: list[Document], vectors: dict[str, Embeddings]) -> None:
        points = [models.PointStruct(id=point_id(doc.id), payload=payload_of(doc), vector={
            f.name: vector_values(f, vectors[f.name], row, self._sparse, self.local)
            for f in self._schema.fields}) for row, doc in enumerate(documents)]
        try:
            if self.local:
                self.client.upsert(self.collection, points, wait=True)
            else:  # batched, parallel, retried with backoff by qdrant-client
                self.client.upload_points(self.collection, points, batch_size=128, parallel=self.upload_parallel,
                                          max_retries=self.upload_retries, wait=True)
        except (UnexpectedResponse, ResponseHandlingException, OSError) as exc:
            raise StoreError(f"Qdrant refused the upsert into {self.collection!r}: {exc}") from exc

    def _delete(self, ids: list[str]) -> int:
        existing = self.client.retrieve(self.collection, [point_id(i) for i in ids], with_payload=False)
        if existing:
            self.client.delete(self.collection, models.PointIdsList(points=[p.id for p in existing]), wait=True)
        return len(existing)

    def _delete_where(self, filter: dict[str, Condition]) -> int:
        qfilter = qdrant_filter(filter, FILTERS)
        matching = self.client.count(self.collection, count_filter=qfilter, exact=True).count
        if matching:
            self.client.delete(self.collection, models.FilterSelector(filter=qfilter), wait=True)
        return matching

    def count(self) -> int:
        if self._schema is None:
            return 0
        return self.client.count(self.collection, exact=True).count

    def get(self, ids: Sequence[str]) -> list[Document]:
        if self._schema is None:
            return []
        found = {p.payload["doc_id"]: p.payload for p in
                 self.client.retrieve(self.collection, [point_id(i) for i in ids], with_payload=True)}
        return [document_of(found[i]) for i in ids if i in found]

    def close(self) -> None:
        self.client.close()

    # --- search -------------------------------------------------------------------------------
    def _search(self, plan: Plan, filter: dict[str, Condition] | None) -> list[Hit]:
        qfilter = qdrant_filter(filter, FILTERS)

        def run(limit: int) -> list[Hit]:
            query, using, prefetch, params = self._translate(plan, qfilter)
            with self._one_search:
                response = self.client.query_points(
                    self.collection, query=query, using=using, prefetch=prefetch, query_filter=qfilter,
                    search_params=params, limit=limit, with_payload=True)
            return [hit_of(p.payload, p.score) for p in response.points]

        return fetch_with_ties(run, plan.limit)

    def _translate(self, plan: Plan, qfilter: Any) -> tuple[Any, str | None, list | None, Any]:
        """(query, using, prefetch, search params) of one plan node; the filter goes on every stage."""
        if isinstance(plan, Fusion):
            # Qdrant's RRF scores 1 / (k + position) with positions from 0; ragembed's 1 / (k + rank)
            # with ranks from 1: k + 1 gives equal scores.
            return (models.RrfQuery(rrf=models.Rrf(k=plan.k + 1)), None,
                    [self._prefetch(p, qfilter) for p in plan.prefetch], None)
        rescore = None if self.local else native_rescore(plan, self._schema)
        if rescore is not None:
            params = models.SearchParams(quantization=models.QuantizationSearchParams(
                rescore=True, oversampling=rescore.oversampling))
            return self._query_vector(self._schema[rescore.field], rescore.query), rescore.field, None, params
        f = self._schema[plan.field]
        params = None
        if f.precision is not Precision.FLOAT32 and not self.local:
            params = models.SearchParams(quantization=models.QuantizationSearchParams(rescore=False))
        prefetch = [self._prefetch(p, qfilter) for p in plan.prefetch] or None
        return self._query_vector(f, plan.query), plan.field, prefetch, params

    def _prefetch(self, plan: Plan, qfilter: Any) -> models.Prefetch:
        query, using, prefetch, params = self._translate(plan, qfilter)
        return models.Prefetch(query=query, using=using, prefetch=prefetch, params=params, limit=plan.limit,
                               filter=qfilter)

    def _query_vector(self, f: VectorField, query: Embeddings) -> Any:
        return vector_values(f, query, 0, self._sparse, self.local, query=True)

    @staticmethod
    def _sparse(indices: list, values: list) -> models.SparseVector:
        return models.SparseVector(indices=indices, values=values)

