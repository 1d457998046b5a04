"""The VectorStore interface and the search plan (the collection schema: stores/schema.py).

A collection holds documents and, per document, one vector in each named field of its schema.
A search is a plan, the shape of Qdrant's Query API, which every adapter maps onto what its
engine does natively:

    VectorSearch(field, query, limit, prefetch=(...))  score on `field`; with prefetch, only the
                                                       union of the prefetch stages' results
    Rescore(field, original, query, limit, oversampling, prefetch=(...))
                                                       quantized search (with prefetch, of only
                                                       their results), then the candidates
                                                       ranked again by their float32 originals
    Fusion(prefetch=(...), limit, rrf_k=60)            reciprocal rank fusion of the stages
    KeywordSearch(text, limit)                         the engine's own BM25 over document text
                                                       (stores whose capabilities have
                                                       keyword_search: Weaviate)

So "binary, then rescore with float32" is Rescore("dense_binary", "dense", q, 10, 4.0), which
Qdrant and Weaviate answer in one query on their quantized index, and which means the same as the
two stages VectorSearch("dense", q, 10, prefetch=(VectorSearch("dense_binary", q, 40),)) that
other stores run; hybrid search is a Fusion of a sparse and a dense stage. Intent is written in
the plan, never guessed from its shape. The base class validates every upsert and search before an
adapter sees it, so bad input fails the same way everywhere and never reaches stored data.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ragembed.errors import (
    DimensionMismatchError,
    InvalidInputError,
    SchemaMismatchError,
    StoreError,
    UnsupportedStrategyError,
)
from ragembed.stores.capabilities import PORTABLE_FILTER_KEYS, Capabilities
from ragembed.stores.filters import Filter, validate_filter
from ragembed.stores.schema import Schema, VectorField
from ragembed.types import (
    Datatype,
    DenseEmbeddings,
    Document,
    EmbeddingKind,
    Embeddings,
    Hit,
    Precision,
    SparseEmbeddings,
    check_positive,
    validate_documents,
)


@dataclass(frozen=True, eq=False)
class VectorSearch:
    """Score documents on one field with one query vector (a single-row Embeddings)."""

    field: str
    query: Embeddings
    limit: int
    prefetch: tuple[Plan, ...] = ()


@dataclass(frozen=True, eq=False)
class Rescore:
    """Quantized search with an exact second pass: the `candidates` (oversampling x limit) best
    documents of the quantized field `field` (with prefetch, among the prefetch stages' results),
    ranked again by their float32 vectors in `original`, with the same float32 query. A dense
    field's originals are its float32 twin ("dense" for "dense_int8"); a quantized multi-vector
    field keeps its own, so its `original` is the field itself. Engines with native quantization
    keep the originals beside the quantized index and rescore in one query; other stores run
    `as_stages()` (dense fields)."""

    field: str
    original: str
    query: Embeddings
    limit: int
    oversampling: float
    prefetch: tuple[Plan, ...] = ()

    @property
    def candidates(self) -> int:
        return max(self.limit, round(self.limit * self.oversampling))

    def as_stages(self) -> VectorSearch:
        """The same search as two stages: the quantized candidates, then the float32 ranking
        (for a dense field and its float32 twin; a multi-vector field is its own original)."""
        assert self.original != self.field, "a field that keeps its own originals has no twin to rank by"
        candidates = VectorSearch(self.field, self.query, self.candidates, self.prefetch)
        return VectorSearch(self.original, self.query, self.limit, prefetch=(candidates,))


@dataclass(frozen=True, eq=False)
class Fusion:
    """Reciprocal rank fusion: score = sum over stages of weight / (rrf_k + rank), rank from 1
    (weights default to 1 each; rrf_k is RRF's constant, not a number of results)."""

    prefetch: tuple[Plan, ...]
    limit: int
    rrf_k: int = 60
    weights: tuple[float, ...] | None = None


@dataclass(frozen=True, eq=False)
class KeywordSearch:
    """BM25 over the stored document text, tokenised and scored by the engine itself. It has no
    stages of its own (no engine narrows its BM25 to candidates): fuse it with others instead."""

    text: str
    limit: int

    @property
    def prefetch(self) -> tuple[Plan, ...]:
        return ()


Plan = VectorSearch | Rescore | Fusion | KeywordSearch


class VectorStore(ABC):
    """One collection of documents with named vector fields, in one engine."""

    # What the store can do (adapters whose engine differs by mode set it per instance);
    # check_plan and the Retriever refuse what it does not declare.
    capabilities: Capabilities = Capabilities()

    # --- what adapters implement ------------------------------------------------------------
    @property
    @abstractmethod
    def schema(self) -> Schema | None:
        """The collection's schema, or None while it does not exist yet."""

    @abstractmethod
    def _create(self, schema: Schema) -> None: ...

    @abstractmethod
    def _update_schema(self, schema: Schema) -> None:
        """Replace the schema with a superset (new fields are empty until documents are re-upserted)."""

    @abstractmethod
    def _upsert(self, documents: list[Document], vectors: dict[str, Embeddings]) -> None: ...

    @abstractmethod
    def _delete(self, ids: list[str]) -> int: ...

    @abstractmethod
    def _delete_where(self, filter: Filter) -> int: ...

    @abstractmethod
    def _search(self, plan: Plan, filter: Filter | None) -> list[Hit]: ...

    async def _asearch(self, plan: Plan, filter: Filter | None) -> list[Hit]:
        """Adapters with an async engine client (capabilities.native_async) override this."""
        return await asyncio.to_thread(self._search, plan, filter)

    @abstractmethod
    def drop(self) -> None:
        """Delete the whole collection: documents, vectors and schema."""

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def get(self, ids: Sequence[str]) -> list[Document]:
        """The stored documents among `ids`, in that order; unknown ids are skipped."""

    def optimize(self) -> None:
        """Build indexes after a bulk load, where the engine does not do it in the background."""

    def check_writable(self) -> None:
        """Raise StoreError if this store cannot be written now (a read-only folder, a folder
        another writer holds). Every write checks it first; Retriever.index checks it before it
        embeds anything."""

    def close(self) -> None:
        """Release the engine (and persist, where the store persists on close)."""

    async def aclose(self) -> None:
        """Async twin of close: also closes the async client of the running event loop, if any."""
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> VectorStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- shared, validated entry points -------------------------------------------------------
    def ensure_schema(self, wanted: Schema) -> Schema:
        """Create the collection, or add `wanted`'s missing fields to it; return the schema in force.

        Fields that already exist keep their stored calibration, and recorded encoders their
        record, so documents indexed later are encoded exactly like the first ones.
        """
        kinds = self.capabilities.kinds
        unsupported = [f.name for f in wanted.fields if f.kind not in kinds]
        if unsupported:
            raise UnsupportedStrategyError(
                f"{type(self).__name__} cannot store the fields {unsupported} (it stores "
                f"{sorted(k.value for k in kinds)} vectors); leave them out or use another store"
            )
        kept = self.capabilities.datatypes
        for f in wanted.fields:
            if f.datatype not in kept:
                turbo = f.datatype in (Datatype.TURBO8, Datatype.TURBO4)
                raise UnsupportedStrategyError(
                    f"{type(self).__name__} cannot keep field {f.name!r} as {f.datatype.value} (it keeps "
                    f"{', '.join(sorted(d.value for d in kept))} token vectors); "
                    + ("TurboQuant storage is Qdrant Edge's (QdrantEdgeStore), or " if turbo else "")
                    + "choose a datatype this store keeps ("
                    + " or ".join(
                        f"strategy 'colbert+dense:{d.value}'" if d is not Datatype.FLOAT32 else "plain 'colbert+dense'"
                        for d in sorted(kept, key=lambda d: d.bits)
                    )
                    + ")"
                )
        if not self.capabilities.quantized_multivectors:
            for f in wanted.fields:
                if f.kind is EmbeddingKind.MULTIVECTOR and f.precision is not Precision.FLOAT32:
                    raise UnsupportedStrategyError(
                        f"{type(self).__name__} keeps no {f.precision.value} index beside the float32 token "
                        f"vectors of field {f.name!r}; use 'colbert+dense' or 'colbert+dense:float16' here, or "
                        "a store that does (the Qdrant server, Qdrant Edge qdrant-edge:PATH, Weaviate, memory)"
                    )
        current = self.schema
        if current is None:
            self.check_writable()
            self._create(wanted)
            return wanted
        merged = current.merged_with(wanted)
        if merged.names == current.names:
            return current  # new fields are the only change a collection takes
        if self.count():
            raise fields_missing_error(self, [n for n in merged.names if n not in current])
        self.check_writable()
        self._update_schema(merged)
        return merged

    def upsert(self, documents: Sequence[Document], vectors: Mapping[str, Embeddings]) -> None:
        """Insert or replace documents (by id) with one vector per schema field each."""
        docs = validate_documents(documents)
        schema = self._require_schema()
        if set(vectors) != set(schema.names):
            raise InvalidInputError(
                f"upsert needs vectors for exactly the fields {sorted(schema.names)}, got {sorted(vectors)}"
            )
        for name, emb in vectors.items():
            if len(emb) != len(docs):
                raise InvalidInputError(f"field {name!r}: {len(emb)} vectors for {len(docs)} documents")
            check_embeddings(schema[name], emb)
        self.check_writable()
        self._upsert(docs, dict(vectors))

    def delete(self, ids: Sequence[str]) -> int:
        """Delete documents by id; returns how many existed."""
        if isinstance(ids, str) or ids is None:
            raise InvalidInputError("delete takes a list of document ids; wrap a single id: [id]")
        ids = list(ids)
        if not all(isinstance(i, str) for i in ids):
            raise InvalidInputError("document ids are strings; convert numbers with str()")
        if not ids or self.schema is None:
            return 0
        self.check_writable()
        return self._delete(ids)

    def delete_where(self, filter: Filter) -> int:
        """Delete every document whose metadata matches `filter`; returns how many."""
        checked = self._checked_filter(filter)
        if not checked:
            raise InvalidInputError("delete_where needs a non-empty filter; to empty a collection, delete it")
        if self.schema is None:
            return 0
        self.check_writable()
        return self._delete_where(checked)

    def search(self, plan: Plan, filter: Filter | None = None) -> list[Hit]:
        return self._search(plan, self._checked_search(plan, filter))

    async def asearch(self, plan: Plan, filter: Filter | None = None) -> list[Hit]:
        """Async twin of search: awaits the engine's async client where the store has one
        (capabilities.native_async), else runs the search in a worker thread."""
        return await self._asearch(plan, self._checked_search(plan, filter))

    def _checked_search(self, plan: Plan, filter: Filter | None) -> Filter | None:
        """Validate a search; returns the validated filter."""
        schema = self._require_schema()
        check_plan(schema, plan)
        check_capable(plan, schema, self.capabilities, type(self).__name__)
        return self._checked_filter(filter)

    def _checked_filter(self, filter: Filter | None) -> Filter | None:
        checked = validate_filter(filter)
        keys = self.capabilities.filter_keys
        for key in checked or ():
            if not keys.accepts(key):
                raise InvalidInputError(
                    f"filter key {key!r}: {type(self).__name__} filters on metadata keys of {keys.description}; "
                    f"keys of {PORTABLE_FILTER_KEYS} work with every store: rename the metadata key"
                )
        return checked

    def _require_schema(self) -> Schema:
        schema = self.schema
        if schema is None:
            raise StoreError(missing_collection_message(self))
        return schema

    def other_collections(self) -> list[str] | None:
        """Names of the collections beside this one (for error messages); None where unknown."""
        return None


def missing_collection_message(store: VectorStore) -> str:
    others = store.other_collections()
    there = (
        ""
        if others is None
        else f"; collections there: {', '.join(sorted(others)[:10])}"
        if others
        else "; there are no collections there"
    )
    return (
        f"{store!r}: the collection does not exist yet (nothing was indexed into it){there}. Check "
        "the store URI and the collection name, or index documents first"
    )


def fields_missing_error(store: VectorStore, missing: Sequence[str]) -> SchemaMismatchError:
    return SchemaMismatchError(
        f"{store!r} already holds {store.count()} documents indexed without the vector fields {list(missing)}, "
        "and fields can only be added to an empty collection. Index into a new collection "
        "(collection=... / --collection NAME), or drop this one and index every document again with "
        "all the strategies you want (Retriever.drop(); CLI: ragembed index ... --recreate)"
    )


def check_embeddings(f: VectorField, emb: Embeddings) -> None:
    if emb.kind is not f.kind:
        raise InvalidInputError(f"field {f.name!r} holds {f.kind.value} vectors, got {emb.kind.value}")
    if isinstance(emb, DenseEmbeddings) and emb.precision is not Precision.FLOAT32:
        raise InvalidInputError(
            f"field {f.name!r} takes float32 vectors, got {emb.precision.value}; stores quantize "
            "int8 and binary fields themselves, so pass the float32 embeddings"
        )
    if not isinstance(emb, SparseEmbeddings) and len(emb) and emb.dim != f.dim:
        raise DimensionMismatchError(
            f"field {f.name!r} holds {f.dim}-dimensional vectors, got {emb.dim}; use the model the "
            "collection was indexed with, or index into a new collection"
        )


def uses_keyword(plan: Plan) -> bool:
    return isinstance(plan, KeywordSearch) or any(uses_keyword(p) for p in plan.prefetch)


def check_capable(plan: Plan, schema: Schema, capabilities: Capabilities, store: str) -> None:
    """Refuse a (structurally valid) plan that needs what the store does not declare."""
    if not capabilities.keyword_search and uses_keyword(plan):
        raise UnsupportedStrategyError(
            f"{store} has no keyword (BM25 over text) search of its own; search a sparse BM25 field "
            "instead (strategy 'bm25'), or use Weaviate"
        )
    unrescored = None if capabilities.quantized_without_rescore else quantized_alone(plan, schema)
    if unrescored is not None:
        raise UnsupportedStrategyError(
            f"{store} always rescores its compressed index with the original vectors, so field "
            f"{unrescored!r} cannot be searched without rescoring; use the rescored strategy "
            "('int8' or 'binary', not ':norescore'), whose plan is a Rescore step"
        )


def quantized_alone(plan: Plan, schema: Schema) -> str | None:
    """A quantized field the plan searches without a Rescore step, if any."""
    if isinstance(plan, VectorSearch) and schema[plan.field].precision is not Precision.FLOAT32:
        return plan.field
    found = (quantized_alone(stage, schema) for stage in plan.prefetch)
    return next((name for name in found if name is not None), None)


def check_rescore(schema: Schema, plan: Rescore) -> None:
    quantized, original = schema[plan.field], schema[plan.original]
    if quantized.precision is Precision.FLOAT32:
        raise InvalidInputError(
            f"Rescore searches a quantized (int8 or binary) field; {plan.field!r} is "
            f"{quantized.precision.value} {quantized.kind.value}. Search it with a VectorSearch instead"
        )
    if quantized.kind is EmbeddingKind.MULTIVECTOR:
        if plan.original != plan.field:
            raise InvalidInputError(
                f"a quantized multi-vector field keeps its own float32 token vectors: Rescore {plan.field!r} "
                f"with original={plan.field!r}, not {plan.original!r}"
            )
    elif original.precision is not Precision.FLOAT32 or original.kind is not EmbeddingKind.DENSE:
        raise InvalidInputError(f"Rescore ranks by a float32 dense field; {plan.original!r} is not one")
    elif original.dim != quantized.dim:
        raise InvalidInputError(
            f"Rescore needs {plan.original!r} to be the float32 twin of {plan.field!r} (same dimension), "
            f"got {original.dim} and {quantized.dim}; for a smaller first stage, nest VectorSearch stages"
        )
    check_positive("Rescore oversampling (candidates per result)", plan.oversampling)
    if plan.oversampling < 1:
        raise InvalidInputError(f"Rescore oversampling (candidates per result) must be >= 1, got {plan.oversampling!r}")
    check_query(original, plan.query)


def check_query(f: VectorField, query: Embeddings) -> None:
    check_embeddings(f, query)
    if len(query) != 1:
        raise InvalidInputError(f"a search stage takes one query vector, got {len(query)}")


def check_plan(schema: Schema, plan: Plan) -> None:
    if not isinstance(plan, (VectorSearch, Rescore, Fusion, KeywordSearch)):
        raise InvalidInputError(
            f"a search plan is a VectorSearch, Rescore, Fusion or KeywordSearch, got {type(plan).__name__}"
        )
    check_positive("limit (k)", plan.limit, integer=True)
    if isinstance(plan, Fusion):
        if not plan.prefetch:
            raise InvalidInputError("Fusion needs at least one prefetch stage")
        if isinstance(plan.rrf_k, bool) or not isinstance(plan.rrf_k, (int, np.integer)) or plan.rrf_k < 0:
            raise InvalidInputError(f"Fusion rrf_k (the RRF constant) must be a whole number >= 0, got {plan.rrf_k!r}")
        if plan.weights is not None and (len(plan.weights) != len(plan.prefetch) or min(plan.weights) < 0):
            raise InvalidInputError("Fusion weights: one non-negative weight per prefetch stage")
    elif isinstance(plan, KeywordSearch):
        if not isinstance(plan.text, str) or not plan.text.strip():
            raise InvalidInputError("a keyword search needs a non-empty query text")
    elif isinstance(plan, Rescore):
        check_rescore(schema, plan)
    else:
        check_query(schema[plan.field], plan.query)
    for stage in plan.prefetch:
        check_plan(schema, stage)
