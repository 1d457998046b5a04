"""The VectorStore interface: one collection of documents with named vector fields, in one engine.

What a search asks (the plan), a collection's schema, filters and what a store declares it can do
are the search language's (ragembed.search); a store validates every upsert and search through
search/validation.py before an adapter sees it, so bad input fails the same way everywhere and
never reaches stored data.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import numpy as np

from ragembed.errors import InvalidInputError, SchemaMismatchError, StoreError
from ragembed.search.capabilities import PORTABLE_FILTER_KEYS, Capabilities
from ragembed.search.filters import Filter, validate_filter
from ragembed.search.plan import Plan, Rerank
from ragembed.search.ranking import reranked
from ragembed.search.schema import Schema
from ragembed.search.validation import check_capable, check_embeddings, check_passage_maps, check_plan, check_storable
from ragembed.types import Document, EmbeddingKind, Embeddings, Hit, PassageMap, validate_documents


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
    def _upsert(
        self, documents: list[Document], vectors: dict[str, Embeddings], passage_maps: list[PassageMap] | None
    ) -> None: ...

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

    @abstractmethod
    def _stored_vectors(self, ids: list[str], field: str) -> dict[str, np.ndarray]: ...

    def vectors(self, ids: Sequence[str], field: str) -> dict[str, np.ndarray]:
        """The stored vectors of a multi-vector field (a per-passage field: one row per passage),
        by document id, as float32 (n, dim) arrays; unknown ids are left out."""
        schema = self._require_schema()
        if schema[field].kind is not EmbeddingKind.MULTIVECTOR:
            raise InvalidInputError(
                f"field {field!r} is {schema[field].kind.value}; vectors() reads multi-vector fields"
            )
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        return {i: np.asarray(v, dtype=np.float32) for i, v in self._stored_vectors(wanted, field).items()}

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
        check_storable(wanted, self.capabilities, type(self).__name__)
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

    def upsert(
        self,
        documents: Sequence[Document],
        vectors: Mapping[str, Embeddings],
        passage_maps: Sequence[PassageMap] | None = None,
    ) -> None:
        """Insert or replace documents (by id) with one vector per schema field each, and, in a
        collection in passages, each document's passage map (returned with its hits)."""
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
        check_passage_maps(schema, vectors, passage_maps, len(docs))
        self.check_writable()
        self._upsert(docs, dict(vectors), list(passage_maps) if passage_maps is not None else None)

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
        return self.search_many([plan], filter)[0]

    async def asearch(self, plan: Plan, filter: Filter | None = None) -> list[Hit]:
        """Async twin of search: awaits the engine's async client where the store has one
        (capabilities.native_async), else runs the search in a worker thread."""
        return (await self.asearch_many([plan], filter))[0]

    def search_many(self, plans: Sequence[Plan], filter: Filter | None = None) -> list[list[Hit]]:
        """One search per plan under one filter, each answered as `search` answers it; an engine
        with a batch query API gets one request per stage for the whole batch, up to a request
        size (the Qdrant server and local mode: query_batch_points), the others one query after
        another. A Rerank plan's first stage is searched so, then its candidates scored here."""
        plans = list(plans)
        found = self._search_many([_first_stage(p) for p in plans], self._checked_search(plans, filter))
        return [self._reranked(plan, hits) for plan, hits in zip(plans, found)]

    async def asearch_many(self, plans: Sequence[Plan], filter: Filter | None = None) -> list[list[Hit]]:
        """Async twin of search_many (a rerank's scoring runs in a worker thread)."""
        plans = list(plans)
        found = await self._asearch_many([_first_stage(p) for p in plans], self._checked_search(plans, filter))
        if not any(isinstance(p, Rerank) for p in plans):
            return found
        return await asyncio.to_thread(lambda: [self._reranked(plan, hits) for plan, hits in zip(plans, found)])

    def _reranked(self, plan: Plan, hits: list[Hit]) -> list[Hit]:
        """A Rerank plan's candidates `hits` scored by its scorer (with the stored vectors it
        reads), the best `plan.limit` kept; any other plan's hits as they are."""
        if not isinstance(plan, Rerank) or not hits:
            return hits
        ids = [h.id for h in hits]
        vectors = {name: self.vectors(ids, name) for name in plan.scorer.fields}
        return reranked(hits, plan.scorer.score(hits, vectors), plan.limit)

    def _search_many(self, plans: list[Plan], filter: Filter | None) -> list[list[Hit]]:
        """Adapters whose engine batches queries override this."""
        return [self._search(plan, filter) for plan in plans]

    async def _asearch_many(self, plans: list[Plan], filter: Filter | None) -> list[list[Hit]]:
        """Adapters whose async engine client batches queries override this."""
        return list(await asyncio.gather(*(self._asearch(plan, filter) for plan in plans)))

    def _checked_search(self, plans: Sequence[Plan], filter: Filter | None) -> Filter | None:
        """Validate searches under one filter; returns the validated filter."""
        schema = self._require_schema()
        for plan in plans:
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


def _first_stage(plan: Plan) -> Plan:
    """What the engine runs of a plan: a Rerank's first stage, any other plan whole."""
    return plan.prefetch[0] if isinstance(plan, Rerank) else plan


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
