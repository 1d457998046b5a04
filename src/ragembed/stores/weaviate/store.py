"""Weaviate, a server by URL or embedded (a server process the client starts and stops).

Mapping (one Weaviate collection per ragembed collection; the class name is the collection name
with its first letter upper-cased, as Weaviate requires):
  dense float32 field      named vector, HNSW (default) or flat (exact) index
  int8 field               named vector with 8-bit rotational quantization (RQ; or SQ), rescored
  binary field             named vector with binary quantization (BQ), rescored; BQ compares the
                           query's bits with the documents', so an asymmetric binary field is
                           searched like a Hamming one here (recall as `binary:hamming`)
  multi-vector (ColBERT)   named multi-vector, MaxSim (HNSW over token vectors), optionally
                           MUVERA-encoded (one fixed-size vector per document, then MaxSim rescoring);
                           an int8 / binary one adds RQ (or SQ) / BQ to its index, rescored
  sparse                   not stored: Weaviate has no user sparse vectors. Its own BM25 over the
                           text serves the `keyword` and `keyword-hybrid` strategies instead.
Search plans: quantized-then-rescore is one Weaviate query (its compressed index rescored with
the originals); prefetch funnels run the stages and restrict the final stage to their candidates
with an id filter; a keyword + dense fusion is Weaviate's hybrid query (ranked fusion, alpha);
other fusions are fused here by RRF. The ragembed schema is kept in the collection description.
Weaviate object ids are uuid5 of the document ids, so upserting a document again replaces it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import time
import warnings
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

import numpy as np

from ragembed.errors import (
    MissingDependencyError,
    PartialWriteError,
    SchemaMismatchError,
    StoreError,
    UnsupportedStrategyError,
)
from ragembed.search import executor, filters
from ragembed.search.capabilities import PORTABLE, Capabilities
from ragembed.search.plan import Fusion, KeywordSearch, Plan, Rerank, Rescore, VectorSearch
from ragembed.search.ranking import ordered_hits, reciprocal_rank_fusion
from ragembed.search.schema import Schema, VectorField
from ragembed.search.validation import uses_keyword
from ragembed.stores.base import VectorStore
from ragembed.stores.ids import point_id
from ragembed.types import (
    DenseEmbeddings,
    Document,
    EmbeddingKind,
    Embeddings,
    Hit,
    MultiVectorEmbeddings,
    PassageMap,
    Precision,
    narrow,
)

try:
    from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

    from weaviate.classes.config import Configure, ConsistencyLevel, ReplicationDeletionStrategy, VectorDistances
    from weaviate.classes.data import DataObject
    from weaviate.classes.query import Filter, HybridFusion, MetadataQuery
    from weaviate.exceptions import (
        WeaviateConnectionError,
        WeaviateGRPCUnavailableError,
        WeaviateInsertManyAllFailedError,
        WeaviateRetryError,
        WeaviateTimeoutError,
    )
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError.for_extra("weaviate-client", "weaviate") from exc

from ragembed.stores.weaviate.connection import connect, connect_async, connect_embedded
from ragembed.stores.weaviate.properties import (
    PASSAGE_MAP,
    Impossible,
    base_properties,
    new_properties,
    properties_of,
    returned_properties,
    weaviate_filter,
)

COLLECTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,200}$")
INSERT_CHUNK = 100
INSERT_BUDGET = 2 << 20  # bytes of vectors per insert call: replicas must confirm a call in time
# Per-object failures worth sending again: a replica that did not answer in time, a node that
# could not be reached for a moment. Anything else (a wrong value) is reported at once.
PASSING_OBJECT_ERROR = re.compile(
    r"timeout|deadline|connect|unavailable|resolve node|not ready|broken pipe", re.IGNORECASE
)
ID_CHUNK = 5_000  # under Weaviate's QUERY_MAXIMUM_RESULTS (10,000) per delete/fetch
WEAVIATE_RRF_K = 60  # the constant of Weaviate's ranked (RRF) hybrid fusion, not configurable
# Transient faults worth retrying (for retry_s seconds): upserts are idempotent (deterministic
# ids), so a retry after a half-applied batch writes each document once.
# So does the client giving up its own retries. A batch in which every object failed counts too:
# ragembed checks every object before sending
# (dimensions, finite values, property types), so in practice that is a server whose cluster
# is not ready yet (just restarted: "resolve node name ... to host"); a lasting cause still ends
# in a PartialWriteError after retry_s.
TRANSIENT = (
    WeaviateConnectionError,
    WeaviateGRPCUnavailableError,
    WeaviateTimeoutError,
    WeaviateRetryError,
    WeaviateInsertManyAllFailedError,
)
T = TypeVar("T")
IndexType = Literal["hnsw", "flat"]
Int8Compression = Literal["rq", "sq"]


def insert_chunk_size(vectors: dict[str, Embeddings]) -> int:
    """Objects per insert call: 100, or fewer where their vectors (ColBERT tokens: about 80 kB a
    document) would pass INSERT_BUDGET; on a replicated collection every replica writes the
    whole call before it answers."""
    floats = sum(
        int(max(v.size for v in emb.vectors)) if isinstance(emb, MultiVectorEmbeddings) else emb.dim
        for emb in vectors.values()
        if isinstance(emb, (DenseEmbeddings, MultiVectorEmbeddings))  # (Weaviate holds no sparse fields)
    )
    return max(1, min(INSERT_CHUNK, INSERT_BUDGET // (4 * max(floats, 1))))


def shard_count(config: Any) -> int:
    sharding = getattr(config, "sharding_config", None)
    return int(getattr(sharding, "actual_count", None) or getattr(sharding, "desired_count", None) or 1)


def replication_config(client: Any, replicas: int) -> Any:
    """`replicas` copies of each shard, kept in step by Weaviate's async replication: a replica
    that missed writes (its node was down, or lost the last ones it acknowledged to a crash) is
    repaired from the others in the background (hash-tree comparisons every 30 s by default,
    ASYNC_REPLICATION_FREQUENCY), the later of a write and a delete winning a conflict. Weaviate
    1.38+ runs it on every replicated collection and no longer has the switch (the client warns
    when it is passed); before 1.38 it is off unless asked for."""
    if replicas == 1:
        return None
    major, minor = (int(part) for part in str(client.get_meta()["version"]).split(".")[:2])
    return Configure.replication(
        factor=replicas,
        async_enabled=True if (major, minor) < (1, 38) else None,
        deletion_strategy=ReplicationDeletionStrategy.TIME_BASED_RESOLUTION,
    )


def class_name(collection: str) -> str:
    if not isinstance(collection, str) or not COLLECTION_NAME.match(collection):
        raise StoreError(f"collection name {collection!r}: Weaviate needs a letter, then letters, digits or '_'")
    return collection[0].upper() + collection[1:]


class WeaviateStore(VectorStore):
    """One ragembed collection in Weaviate.

    >>> store = WeaviateStore("http://127.0.0.1:8080", "docs")          # a server
    >>> store = WeaviateStore.embedded("./weaviate-data", "docs")       # embedded
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:8080",
        collection: str = "default",
        *,
        api_key: str | None = None,
        grpc_port: int | None = None,
        timeout_s: float = 60.0,
        index: IndexType | None = None,
        muvera: bool | None = None,
        int8_compression: Int8Compression | None = None,
        shards: int | None = None,
        replicas: int | None = None,
        retry_s: float = 30.0,
        client: Any = None,
    ) -> None:
        """Index settings, fixed when the collection is created (None: the existing collection's,
        or the default for a new one): index "hnsw" (approximate, the default) or "flat" (exact
        brute force) for dense fields; muvera (default False): encode multi-vector fields with
        MUVERA; int8_compression: "rq" (the default: 8-bit rotational quantization, no training)
        or "sq" (scalar quantization, HNSW only; Weaviate compresses once 100,000 vectors have
        trained it). On a cluster: shards (default: Weaviate's, one per node) splits the
        collection across nodes; replicas (default 1) keeps that many copies of each shard (kept
        in step by Weaviate's async replication, see replication_config), and needs at least as
        many nodes. Opening an existing collection with other settings raises.
        retry_s: how long a write keeps retrying a server it cannot reach (a restart, a
        failover) before it raises a PartialWriteError naming the documents not written.
        api_key: or $WEAVIATE_API_KEY. client: an already connected weaviate client to use."""
        if index not in (None, "hnsw", "flat"):
            raise StoreError(f"index must be 'hnsw' or 'flat', got {index!r}")
        if int8_compression not in (None, "rq", "sq") or (int8_compression == "sq" and index == "flat"):
            raise StoreError(
                f"int8_compression must be 'rq', or 'sq' with index='hnsw'; got {int8_compression!r} "
                f"with index={index!r}"
            )
        for name, count in (("shards", shards), ("replicas", replicas)):
            if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
                raise StoreError(f"{name} must be a whole number >= 1, got {count!r}")
        if isinstance(retry_s, bool) or not isinstance(retry_s, (int, float)) or not 0 <= retry_s < float("inf"):
            raise StoreError(f"retry_s must be a number of seconds >= 0, got {retry_s!r}")
        self.retry_s = float(retry_s)
        self.name = class_name(collection)
        self.collection = collection
        self.url = url if client is None else None
        asked = {
            "index": index,
            "muvera": muvera,
            "int8_compression": int8_compression,
            "shards": shards,
            "replicas": replicas,
        }
        self.settings: dict[str, Any] = {
            "index": "hnsw",
            "muvera": False,
            "int8_compression": "rq",
            "shards": None,
            "replicas": 1,
        } | {k: v for k, v in asked.items() if v is not None}
        self._owns_client = client is None  # a client passed in stays open for its owner
        self._client = client or connect(url, api_key=api_key, grpc_port=grpc_port, timeout_s=timeout_s)
        # A server by URL is searched through weaviate's async client too, one per event loop
        # (its connections belong to the loop that opened them); a client passed in (embedded
        # mode) leaves no URL to open one with, so its async searches run in a worker thread.
        self._connection: dict[str, Any] = {
            "url": url,
            "api_key": api_key,
            "grpc_port": grpc_port,
            "timeout_s": timeout_s,
        }
        self.capabilities = Capabilities(
            kinds=frozenset({EmbeddingKind.DENSE, EmbeddingKind.MULTIVECTOR}),
            keyword_search=True,
            native_async=client is None,
            native_quantization=True,
            quantized_without_rescore=False,
            asymmetric_binary=False,  # BQ compares bits with bits (the field's creation warns)
            filter_keys=PORTABLE,
        )
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._schema: Schema | None = None
        self._properties: set[str] = set()
        self._shards = 1
        self._load(asked)

    @classmethod
    def embedded(
        cls,
        path: str | os.PathLike[str],
        collection: str = "default",
        *,
        timeout_s: float = 60.0,
        index: IndexType | None = None,
        muvera: bool | None = None,
        int8_compression: Int8Compression | None = None,
    ) -> WeaviateStore:
        """Start an embedded Weaviate with its data in `path` (stopped by close())."""
        client = connect_embedded(path, timeout_s=timeout_s)
        try:
            store = cls(
                collection=collection, index=index, muvera=muvera, int8_compression=int8_compression, client=client
            )
        except BaseException:
            client.close()
            raise
        store.url, store._owns_client = f"embedded:{path}", True
        return store

    def __repr__(self) -> str:  # never the API key
        return f"WeaviateStore(url={self.url!r}, collection={self.collection!r})"

    @property
    def _collection(self) -> Any:
        return self._client.collections.use(self.name)

    # Consistency on a replicated collection (replicas > 1): every write waits for ALL replicas,
    # every read asks ONE. Reads then always see every acknowledged write (1 + all > replicas) and
    # keep answering while a replica's node is down; writes during that time fail, and name the
    # documents not written (PartialWriteError), until the node is back.
    @property
    def _reading(self) -> Any:
        return self._consistent(self._collection, ConsistencyLevel.ONE)

    @property
    def _writing(self) -> Any:
        return self._consistent(self._collection, ConsistencyLevel.ALL)

    def _consistent(self, collection: Any, level: ConsistencyLevel) -> Any:
        return collection.with_consistency_level(level) if self.settings["replicas"] > 1 else collection

    async def _async_collection(self) -> Any:
        loop = asyncio.get_running_loop()
        if loop not in self._async_clients:  # the first search of this loop connects, the others wait for it
            self._async_clients[loop] = loop.create_task(connect_async(**self._connection))
        try:
            client = await self._async_clients[loop]
        except BaseException:
            self._async_clients.pop(loop, None)  # the next search tries again
            raise
        return client.collections.use(self.name)

    def _load(self, asked: dict[str, Any]) -> None:
        if not self._client.collections.exists(self.name):
            return
        config = self._collection.config.get()
        try:
            stored = json.loads(config.description or "")
            self._schema = Schema.from_dict(stored["ragembed_schema"])
        except (ValueError, KeyError, TypeError):
            raise SchemaMismatchError(
                f"Weaviate collection {self.name!r} exists but was not created by ragembed (its "
                "description holds no ragembed schema); choose another collection name"
            ) from None
        self.settings = {k: stored.get(k, v) for k, v in self.settings.items()}
        differing = {k: v for k, v in asked.items() if v is not None and v != self.settings[k]}
        if differing:
            raise SchemaMismatchError(
                f"Weaviate collection {self.name!r} was created with "
                f"{ {k: self.settings[k] for k in differing} }, not {differing}; index settings cannot "
                "change: open it without them, or index into another collection"
            )
        self._properties = {p.name for p in config.properties}
        self._shards = shard_count(config)

    # --- schema -------------------------------------------------------------------------------
    @property
    def schema(self) -> Schema | None:
        return self._schema

    def _create(self, schema: Schema) -> None:
        asymmetric = [f.name for f in schema.fields if f.asymmetric]
        if asymmetric:
            warnings.warn(
                f"Weaviate's binary quantization (BQ) compares the query's bits with the documents' bits: "
                f"the asymmetric binary field(s) {asymmetric} are searched as Hamming, with the recall of "
                "'binary:hamming' (rescoring is unchanged). Qdrant and the memory store score the query's "
                "own values against the bits.",
                stacklevel=3,
            )
        description = json.dumps({"ragembed_schema": schema.to_dict(), **self.settings})
        shards = self.settings["shards"]
        self._guard(
            lambda: self._client.collections.create(
                self.name,
                description=description,
                properties=base_properties(schema),
                vector_config=[self._vector_config(f) for f in schema.fields] or None,
                sharding_config=Configure.sharding(desired_count=shards) if shards else None,
                replication_config=replication_config(self._client, self.settings["replicas"]),
            )
        )
        self._schema = schema
        self._properties = {p.name for p in base_properties(schema)}
        self._shards = shard_count(self._guard(lambda: self._collection.config.get()))

    def _update_schema(self, schema: Schema) -> None:
        self.drop()  # only ever called on an empty collection
        self._create(schema)

    def _vector_config(self, f: VectorField) -> Any:
        distance = VectorDistances.COSINE if f.distance == "cosine" else VectorDistances.DOT
        quantizer = {
            Precision.FLOAT32: None,
            Precision.INT8: Configure.VectorIndex.Quantizer.rq(bits=8)
            if self.settings["int8_compression"] == "rq"
            else Configure.VectorIndex.Quantizer.sq(),
            Precision.BINARY: Configure.VectorIndex.Quantizer.bq(),
        }[f.precision]
        if f.kind is EmbeddingKind.MULTIVECTOR:  # Weaviate indexes multi-vectors with HNSW only
            encoding = Configure.VectorIndex.MultiVector.Encoding.muvera() if self.settings["muvera"] else None
            return Configure.MultiVectors.self_provided(
                name=f.name,
                encoding=encoding,
                vector_index_config=Configure.VectorIndex.hnsw(distance_metric=distance, quantizer=quantizer),
            )
        index = Configure.VectorIndex.flat if self.settings["index"] == "flat" else Configure.VectorIndex.hnsw
        return Configure.Vectors.self_provided(
            name=f.name, vector_index_config=index(distance_metric=distance, quantizer=quantizer)
        )

    def drop(self) -> None:
        self._guard(lambda: self._client.collections.delete(self.name))
        self._schema = None
        self._properties = set()

    # --- writes -------------------------------------------------------------------------------
    def _upsert(
        self, documents: list[Document], vectors: dict[str, Embeddings], passage_maps: list[PassageMap] | None
    ) -> None:
        added = new_properties(documents, self._properties)
        for prop in added:
            self._guard(lambda: self._collection.config.add_property(prop))
            self._properties.add(prop.name)
        failed: dict[str, str] = {}
        fields = self._require_schema().fields
        chunk_size = insert_chunk_size(vectors)
        for start in range(0, len(documents), chunk_size):
            chunk = documents[start : start + chunk_size]
            objects = [
                DataObject(
                    properties=properties_of(doc, passage_maps[start + i] if passage_maps else None),
                    uuid=point_id(doc.id),
                    vector={f.name: self._values(f, vectors[f.name], start + i) for f in fields},
                )
                for i, doc in enumerate(chunk)
            ]
            try:
                errors = self._guard(lambda: self._insert(objects))
            except StoreError as exc:  # still failing after the retries: say what is not written
                failed.update(PartialWriteError.not_confirmed((d.id for d in documents[start:]), exc))
                raise PartialWriteError(
                    f"Weaviate stopped accepting writes ({exc}); {len(failed)} of {len(documents)} documents "
                    "are not (or not surely) written, the others are. Upsert them again once the "
                    "server is back",
                    failed,
                ) from exc
            failed.update({chunk[i].id: message for i, message in errors.items()})
        if failed:
            shown = "; ".join(f"{doc_id!r}: {message}" for doc_id, message in list(failed.items())[:10])
            raise PartialWriteError(
                f"Weaviate refused {len(failed)} of {len(documents)} documents (the others are "
                f"written): {shown}. Fix those documents and upsert them again",
                failed,
            )

    def _insert(self, objects: list[DataObject[Any, Any]]) -> dict[int, str]:
        """Insert `objects`; returns {position: reason} of those not written. For retry_s, a failed
        call is retried, and so are single objects that failed for a passing reason (a replica
        that did not confirm in time, a node not reachable for a moment)."""
        deadline = time.monotonic() + self.retry_s
        pending, pause = list(range(len(objects))), 0.25
        while True:
            retrying = Retrying(
                retry=retry_if_exception_type(TRANSIENT),
                stop=stop_after_delay(max(0.0, deadline - time.monotonic())),
                wait=wait_exponential(multiplier=0.25, max=4),
                reraise=True,
            )
            result = retrying(self._writing.data.insert_many, [objects[i] for i in pending])
            errors = {pending[i]: error.message for i, error in result.errors.items()}
            passing = [i for i, message in errors.items() if PASSING_OBJECT_ERROR.search(message)]
            if not passing or time.monotonic() + pause > deadline:
                return errors
            time.sleep(pause)
            pause = min(4.0, 2 * pause)
            pending = passing

    @staticmethod
    def _values(f: VectorField, emb: Embeddings, row: int) -> list[Any]:
        if isinstance(emb, MultiVectorEmbeddings):
            return list(emb.vectors[row].tolist())
        return list(narrow(emb, DenseEmbeddings).data[row].tolist())

    def _delete(self, ids: list[str]) -> int:
        deleted = 0
        for start in range(0, len(ids), ID_CHUNK):
            where = Filter.by_id().contains_any([point_id(i) for i in ids[start : start + ID_CHUNK]])
            deleted += self._guard(lambda: self._writing.data.delete_many(where=where)).successful
        return deleted

    def _delete_where(self, filter: filters.Filter) -> int:
        try:
            where = weaviate_filter(filter, self._properties)
        except Impossible:
            return 0
        deleted: int = 0
        while True:  # one call deletes at most QUERY_MAXIMUM_RESULTS objects
            result = self._guard(lambda: self._writing.data.delete_many(where=where))
            deleted += result.successful
            if result.matches == 0 or result.successful == 0:
                return deleted

    def count(self) -> int:
        if self._schema is None:
            return 0
        return int(self._guard(lambda: self._reading.aggregate.over_all(total_count=True)).total_count)

    def get(self, ids: Sequence[str]) -> list[Document]:
        if self._schema is None:
            return []
        found = {h.id: h for h in executor.run(self._fetch(list(ids)), self._send)}
        return [Document(i, found[i].text, found[i].metadata) for i in ids if i in found]

    def _stored_vectors(self, ids: list[str], field: str) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]

            def fetch(chunk: list[str] = chunk) -> Any:
                return self._reading.query.fetch_objects(
                    filters=Filter.by_id().contains_any([point_id(i) for i in chunk]),
                    limit=len(chunk),
                    include_vector=[field],
                    return_properties=["doc_id"],
                )

            result = self._guard(fetch)
            found.update({o.properties["doc_id"]: np.asarray(o.vector[field]) for o in result.objects})
        return found

    def other_collections(self) -> list[str] | None:
        try:
            return [name for name in self._client.collections.list_all(simple=True) if name != self.name]
        except Exception:
            return None

    def close(self) -> None:
        # Async clients of other event loops cannot be closed from here; their connections close
        # when those loops are gone.
        self._async_clients.clear()
        if self._owns_client:
            self._client.close()  # also stops an embedded server

    async def aclose(self) -> None:
        connecting = self._async_clients.pop(asyncio.get_running_loop(), None)
        if connecting is not None and connecting.done() and connecting.exception() is None:
            await connecting.result().close()
        await asyncio.to_thread(self.close)  # an embedded server takes a moment to stop

    # --- search -------------------------------------------------------------------------------
    def _search(self, plan: Plan, filter: filters.Filter | None) -> list[Hit]:
        return executor.run(self._search_steps(plan, filter), self._send)

    async def _asearch(self, plan: Plan, filter: filters.Filter | None) -> list[Hit]:
        if not self.capabilities.native_async:
            return await super()._asearch(plan, filter)
        reading = self._consistent(await self._async_collection(), ConsistencyLevel.ONE)

        async def answer(ask: executor.Ask[Any]) -> list[Hit]:
            with self._engine_errors():
                hits: list[Hit] = await self._ask(reading.query, ask)
            return hits

        async def send(asks: list[executor.Ask[Any]]) -> list[list[Hit]]:
            return list(await asyncio.gather(*(answer(ask) for ask in asks)))

        return await executor.arun(self._search_steps(plan, filter), send)

    def _search_steps(self, plan: Plan, filter: filters.Filter | None) -> executor.Steps[list[Hit]]:
        if self._shards > 1 and uses_keyword(plan):
            # Weaviate scores BM25 with each shard's own term statistics and offers no collection-
            # wide ones, so a sharded collection would rank (and score) unlike one node.
            raise UnsupportedStrategyError(
                f"Weaviate collection {self.name!r} has {self._shards} shards, and Weaviate's BM25 scores each "
                "shard with its own statistics: keyword search would rank differently from one shard. Use a "
                "collection with shards=1 (replicas still spread it over the nodes), or a dense strategy; "
                "on Qdrant, 'bm25' and 'hybrid' are exact on any shard layout"
            )
        try:
            where = weaviate_filter(filter, self._properties)
        except Impossible:
            return []
        return (yield from self._run(plan, where, full=True))

    # Each engine query is an Ask whose request is a tuple naming the query API to call:
    # ("near", field, query, where, full), ("bm25", text, where, full),
    # ("hybrid", text, vector stage, alpha, where, full) or ("fetch", ids); `_ask` calls it.
    def _run(self, plan: Plan, where: Any, full: bool) -> executor.Steps[list[Hit]]:
        """The plan's top `limit` hits; with full=False only ids and scores (candidate stages)."""
        if isinstance(plan, Fusion):
            return (yield from self._fusion(plan, where, full))
        if isinstance(plan, KeywordSearch):
            return (yield from executor.with_ties(("bm25", plan.text, where, full), plan.limit))
        assert not isinstance(plan, Rerank), plan  # VectorStore.search_many runs a rerank's first stage only
        if plan.prefetch:
            stages = yield from executor.together([self._run(stage, where, full=False) for stage in plan.prefetch])
            pool = {h.id for stage in stages for h in stage}
            if not pool:
                return []
            only = Filter.by_id().contains_any([point_id(i) for i in sorted(pool)])
            where = only if where is None else Filter.all_of([where, only])
            if self._muvera_encoded(plan.field):
                # MUVERA picks its results by the fixed-size encodings and rescores only those
                # with MaxSim: asked for `limit`, it would drop candidates MaxSim ranks higher.
                # Ask for the whole pool, so every candidate is ranked by MaxSim.
                (candidates,) = yield [executor.Ask(("near", plan.field, plan.query, where, False), len(pool))]
                return (yield from self._complete(ordered_hits(candidates, plan.limit), full))
        if isinstance(plan, Rescore):
            # The quantized index, rescored by Weaviate with the original vectors: ask it for
            # the oversampled candidate count, keep the best `limit` of the rescored scores.
            (candidates,) = yield [executor.Ask(("near", plan.field, plan.query, where, False), plan.candidates)]
            return (yield from self._complete(ordered_hits(candidates, plan.limit), full))
        # (A quantized field searched alone is refused before here: Weaviate rescores its
        # compressed index on every query, so it would silently come back rescored.)
        return (yield from executor.with_ties(("near", plan.field, plan.query, where, full), plan.limit))

    def _muvera_encoded(self, field: str) -> bool:
        return bool(self.settings["muvera"]) and self._require_schema()[field].kind is EmbeddingKind.MULTIVECTOR

    def _fusion(self, plan: Fusion, where: Any, full: bool) -> executor.Steps[list[Hit]]:
        stages = plan.prefetch
        hybrid = self._hybrid_stages(plan)
        if hybrid is not None:
            keyword, vector, alpha = hybrid
            return (yield from executor.with_ties(("hybrid", keyword.text, vector, alpha, where, full), plan.limit))
        rankings = yield from executor.together([self._run(stage, where, full=False) for stage in stages])
        return (yield from self._complete(reciprocal_rank_fusion(rankings, plan.limit, plan.rrf_k, plan.weights), full))

    def _hybrid_stages(self, plan: Fusion) -> tuple[KeywordSearch, VectorSearch, float] | None:
        """A fusion of one keyword search and one plain float32 vector search, in either order, is
        Weaviate's own hybrid query (ranked fusion, alpha = the vector stage's share of the weight),
        when it uses Weaviate's fixed RRF constant; another rrf_k is fused here instead."""
        if len(plan.prefetch) != 2 or plan.rrf_k != WEAVIATE_RRF_K:
            return None
        weights = dict(zip(plan.prefetch, plan.weights or (1.0, 1.0)))
        keyword = next((s for s in plan.prefetch if isinstance(s, KeywordSearch)), None)
        vector = next((s for s in plan.prefetch if isinstance(s, VectorSearch)), None)
        if keyword is None or vector is None or vector.prefetch:
            return None
        if self._require_schema()[vector.field].precision is not Precision.FLOAT32:
            return None
        total = weights[keyword] + weights[vector]
        return keyword, vector, weights[vector] / total if total else 0.5

    def _complete(self, hits: list[Hit], full: bool) -> executor.Steps[list[Hit]]:
        """Fill in text and metadata of id-only hits (final results of client-side stages)."""
        if not full:
            return hits
        return (yield from executor.with_documents(hits, self._fetch))

    @staticmethod
    def _fetch(ids: list[str]) -> executor.Steps[list[Hit]]:
        chunks = [ids[start : start + ID_CHUNK] for start in range(0, len(ids), ID_CHUNK)]
        found = yield [executor.Ask(("fetch", chunk), len(chunk)) for chunk in chunks]
        return [hit for chunk in found for hit in chunk]

    def _send(self, asks: list[executor.Ask[Any]]) -> list[list[Hit]]:
        reading = self._reading
        return [self._guard(lambda: self._ask(reading.query, ask)) for ask in asks]

    def _ask(self, query: Any, ask: executor.Ask[Any]) -> Any:
        """Call the query API (`collection.query`, sync or async) for one Ask; returns its hits,
        or, from an async collection, an awaitable of them."""
        kind, *args = ask.request
        if kind == "fetch":
            (ids,) = args
            result = query.fetch_objects(
                filters=Filter.by_id().contains_any([point_id(i) for i in ids]),
                limit=len(ids),
                return_properties=returned_properties(self._require_schema()),
            )
            return then(result, lambda r: [hit_of(o, 0.0, True) for o in r.objects])
        *args, where, full = args
        returned = returned_properties(self._require_schema()) if full else ["doc_id"]
        if kind == "near":
            field, vectors = args
            f = self._require_schema()[field]
            vector = self._values(f, vectors, 0)
            result = query.near_vector(
                near_vector=vector,
                target_vector=field,
                limit=ask.limit,
                filters=where,
                return_metadata=MetadataQuery(distance=True),
                return_properties=returned,
            )
            # Weaviate returns distances: 1 - cosine, or -dot (also -MaxSim for multi-vectors).
            cosine = f.distance == "cosine"

            def hits(r: Any) -> list[Hit]:
                return [
                    hit_of(o, 1.0 - o.metadata.distance if cosine else -o.metadata.distance, full) for o in r.objects
                ]

            return then(result, hits)
        if kind == "bm25":
            (text,) = args
            result = query.bm25(
                query=text,
                query_properties=["text"],
                limit=ask.limit,
                filters=where,
                return_metadata=MetadataQuery(score=True),
                return_properties=returned,
            )
        else:
            text, stage, alpha = args
            result = query.hybrid(
                query=text,
                vector=stage.query.data[0].tolist(),
                target_vector=stage.field,
                alpha=alpha,
                fusion_type=HybridFusion.RANKED,
                query_properties=["text"],
                limit=ask.limit,
                filters=where,
                return_metadata=MetadataQuery(score=True),
                return_properties=returned,
            )
        return then(result, lambda r: [hit_of(o, o.metadata.score, full) for o in r.objects])

    @contextmanager
    def _engine_errors(self) -> Iterator[None]:
        """Weaviate failures inside become StoreErrors that say what failed; one definition for the
        sync client's calls and the async client's awaits alike."""
        try:
            yield
        except Exception as exc:
            failure = self._failure(exc)
            if failure is None:
                raise
            raise failure from exc

    def _guard(self, call: Callable[[], T]) -> T:
        """Run a Weaviate call under _engine_errors."""
        with self._engine_errors():
            return call()

    def _failure(self, exc: Exception) -> StoreError | None:
        if isinstance(exc, StoreError) or not type(exc).__module__.startswith(("weaviate", "grpc", "httpx")):
            return None
        return StoreError(f"Weaviate ({self.url}, collection {self.name}): {type(exc).__name__}: {str(exc)[:500]}")


def then(result: Any, convert: Callable[[Any], T]) -> T | Awaitable[T]:
    """convert(result), or for an awaitable result (an async client's), an awaitable of it."""
    if inspect.isawaitable(result):

        async def converted() -> T:
            return convert(await result)

        return converted()
    return convert(result)


def hit_of(obj: Any, score: float, full: bool) -> Hit:
    props = obj.properties
    if not full:
        return Hit(props["doc_id"], float(score), "", {})
    stored = props.get(PASSAGE_MAP.name)
    passage_map = PassageMap(stored) if stored is not None else None
    metadata = json.loads(props["metadata_json"])
    return Hit(props["doc_id"], float(score), props["text"], metadata, passage_map=passage_map)
