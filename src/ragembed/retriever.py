"""The Retriever: the one place that holds both embedders and a store.

    retriever = Retriever("memory", strategy=["hybrid", "binary"])
    retriever.index(documents)
    hits = retriever.search("what causes scurvy?", k=10)                # first strategy
    hits = retriever.search("what causes scurvy?", k=10, strategy="binary")
    async with Retriever("qdrant://localhost:6333") as retriever:   # the async twins
        hits = await retriever.asearch("what causes scurvy?")

Indexing embeds each text once per embedder the strategies need (held by name: by default
"dense", "sparse" and "multivector"), derives every strategy's fields from those (truncated,
quantized, encoded) and upserts them together, so one collection serves all its strategies.
"""

from __future__ import annotations

import asyncio
import enum
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from ragembed.embedders.base import Embedder
from ragembed.errors import (
    InvalidInputError,
    PartialWriteError,
    SchemaMismatchError,
    StoreError,
    TruncationWarning,
    UnsupportedStrategyError,
)
from ragembed.passages import DEFAULT_CHUNKING, Chunking, grouped, passage_map
from ragembed.rerank import CrossEncoderReranker
from ragembed.search.filters import Filter
from ragembed.search.plan import Plan
from ragembed.search.schema import (
    DEFAULT_EMBEDDER,
    Schema,
    VectorField,
    check_embedder_name,
    describe_passages,
    same_passages,
)
from ragembed.search.validation import check_embedders_given, check_servable
from ragembed.stores.base import VectorStore, fields_missing_error, missing_collection_message
from ragembed.stores.uri import open_store
from ragembed.strategies import Base, Reranked, Strategy, derive, parse_strategy, passage_embeddings
from ragembed.types import (
    Document,
    EmbeddingKind,
    Embeddings,
    Hit,
    MultiVectorEmbeddings,
    Passage,
    PassageMap,
    check_positive,
    narrow,
    validate_documents,
    validate_texts,
)

StrategySpec = str | Strategy


class Unset(enum.Enum):
    UNSET = "unset"  # a Retriever given no passage settings: the collection's decide


UNSET = Unset.UNSET
UPSERT_BATCH = 1000
# Every indexing call that cuts texts says so, not only the first one in a process (Python's
# default shows a warning once per place); filters a user set before this still come first.
warnings.filterwarnings("always", category=TruncationWarning, append=True)


class Retriever:
    """Embedders + a store + search strategies: `index`, `search`, `asearch`.

    Args:
        store: a VectorStore, or a store URI ("memory", "qdrant-edge:./index", "qdrant://host:6333",
            "weaviate://host:8080", ...; `ragembed.stores.uri.SCHEMES`).
        strategy: one strategy or several, by name ("dense", "binary", "funnel:64", "hybrid",
            "colbert", ...) or as Strategy objects; the first is the default for `search`, and
            `index` stores the fields of all of them.
        embedder: the dense embedder (default: DenseEmbedder(), the bundled all-MiniLM-L6-v2);
            the embedder named "dense".
        sparse_embedder: the sparse one (default: BM25Embedder()), for "bm25" and "hybrid"; "sparse".
        multivector_embedder: the multi-vector one (default: ColBERTEmbedder()), for "colbert";
            "multivector".
        embedders: more embedders, by name, for strategies that name them ("colbert@colbert_b"
            or ColBERT(using=Using(multivector="colbert_b"))): any number, of any kind.
        collection: the collection a store URI opens.
        show_progress: progress bars while embedding.
        passages: split documents into passages that fit each model's window before embedding them
            (ragembed.passages): every word of a long document is embedded, a document's score is
            its best passage's, and each hit carries its best passage. None (the default): as the
            collection was indexed; a new one is split (passages of 128 word pieces, or the
            model's window where smaller), unless a strategy cannot search passages on this store
            (keyword-hybrid, binary:hamming, int8 or binary on Qdrant local mode: `whole_because`
            says, and indexing warns where a document is cut). False: whole documents, cut at the
            window (indexing warns). `bm25` reads whole documents (`bm25:passages`, their passages).
        chunk_size: word pieces a passage holds at most (default 128, measured best on SciFact and
            SciFact-long: docs/benchmarks.md; 128, given or not, is capped at a smaller window;
            "window": each model's whole window); implies passages.
        chunk_overlap: word pieces a passage repeats from the one before (default 0); implies passages.
        reranker: the cross-encoder that strategies ending in ">rerank" score candidates with: a
            CrossEncoderReranker, or the folder (or hub name) of one (`ragembed finetune reranker`
            trains one). In a collection split into passages it scores each candidate's passages,
            a document taking its best, which its hit names.
    """

    def __init__(
        self,
        store: VectorStore | str = "memory",
        strategy: StrategySpec | Sequence[StrategySpec] = "dense",
        *,
        embedder: Embedder | None = None,
        sparse_embedder: Embedder | None = None,
        multivector_embedder: Embedder | None = None,
        embedders: Mapping[str, Embedder] | None = None,
        collection: str = "default",
        show_progress: bool = False,
        passages: bool | None = None,
        chunk_size: int | Literal["window"] | None = None,
        chunk_overlap: int | None = None,
        reranker: CrossEncoderReranker | str | None = None,
    ) -> None:
        if isinstance(reranker, str):
            reranker = CrossEncoderReranker(reranker)
        elif reranker is not None and not isinstance(reranker, CrossEncoderReranker):
            raise InvalidInputError(
                "reranker must be a CrossEncoderReranker or the folder of a cross-encoder, "
                f"got {type(reranker).__name__}"
            )
        self.reranker = reranker
        if isinstance(strategy, (str, Strategy)):
            specs = [strategy]
        elif isinstance(strategy, Iterable) and not isinstance(strategy, Mapping):
            specs = list(strategy)
        else:
            raise InvalidInputError(
                f"strategy must be a name such as 'dense', a Strategy, or a list of them; got {strategy!r}"
            )
        if not specs:
            raise InvalidInputError("give at least one strategy, e.g. strategy='dense'")
        if not isinstance(store, (str, VectorStore)):
            raise InvalidInputError(
                f"store must be a store URI such as 'memory' or 'qdrant-edge:./index', or a VectorStore; "
                f"got {type(store).__name__}"
            )
        self.strategies: dict[str, Strategy] = {}
        for spec in specs:
            parsed = self._with_reranker(parse_strategy(spec))
            self.strategies.setdefault(parsed.name, parsed)
        self.store = open_store(store, collection) if isinstance(store, str) else store
        self.show_progress = show_progress
        self._embedders = _named_embedders(embedder, sparse_embedder, multivector_embedder, embedders)
        self._chunking = _chunking(passages, chunk_size, chunk_overlap)
        _ = self.chunking  # a collection split otherwise fails here
        for s in self.strategies.values():
            self._check_servable(s)
        # Embedders restored from the collection's manifest, by name, with the record they match.
        self._restored: dict[str, tuple[Mapping[str, Any], Embedder]] = {}
        for name in list(self._embedders):  # an embedder the collection cannot use fails here
            self.embedder(name)

    def __repr__(self) -> str:
        return f"Retriever(store={self.store!r}, strategies={list(self.strategies)})"

    @property
    def chunking(self) -> Chunking | None:
        """How documents are split into passages (None: embedded whole): as given, else as the
        collection records, else (a new collection) passages of DEFAULT_CHUNKING unless a strategy
        cannot search passages on this store (`whole_because`).

        Raises:
            SchemaMismatchError: the collection was indexed with other passage settings than given.
        """
        schema = self.store.schema
        recorded = schema.passages if schema is not None and schema.fields else UNSET
        if self._chunking is UNSET:
            if recorded is UNSET:
                return self.default_chunking
            return None if recorded is None else Chunking.from_record(recorded)
        given = self._chunking
        if recorded is not UNSET and not same_passages(recorded, given.record() if given else None):
            raise SchemaMismatchError(
                f"{self.store!r} was indexed {describe_passages(recorded)}, and this Retriever splits "
                f"{describe_passages(given.record() if given else None)}; leave passages, chunk_size and "
                "chunk_overlap out to follow the collection, or index into another collection (CLI: --collection "
                "NAME, or --recreate)"
            )
        return given

    @property
    def default_chunking(self) -> Chunking | None:
        """How a new collection is split when no passage setting is given: DEFAULT_CHUNKING, or
        whole documents where a strategy cannot search passages on this store (`whole_because`)."""
        return DEFAULT_CHUNKING if self.whole_because is None else None

    @property
    def whole_because(self) -> str | None:
        """Why a new collection would hold whole documents though no passage setting was given:
        a strategy that cannot search passages on this store (None: it would be split)."""
        capabilities = self.store.capabilities
        reasons = (s.passage_refusal(capabilities) for s in self.strategies.values())
        return next((f"{type(self.store).__name__}: {r}" for r in reasons if r is not None), None)

    @property
    def strategy(self) -> Strategy:
        """The default strategy: the first one given."""
        return next(iter(self.strategies.values()))

    # --- indexing -------------------------------------------------------------------------------
    def index(self, documents: Iterable[Document]) -> int:
        """Embed and upsert documents (idempotent by id); returns how many were written.

        Args:
            documents: Document(id, text, metadata); an id already stored is replaced.

        Raises:
            PartialWriteError: the store confirmed only part of a batch; it names every document
                not written (that batch's failures and every later batch).

        Warns:
            TruncationWarning: an embedder's window cut some documents (how many, by how much).

        The int8 calibration and BM25's average document length are fitted on the documents of
        a new collection's first call and stored with the collection; later calls reuse them.
        """
        docs = validate_documents(documents)
        texts = [d.text for d in docs]
        self.store.check_writable()
        schema = self.store.schema
        if schema is not None:  # refuse before anything is embedded
            missing = [n for s in self.strategies.values() for n in s.field_names if n not in schema]
            if missing and self.store.count():
                raise fields_missing_error(self.store, list(dict.fromkeys(missing)))
        names = set().union(*(s.needs for s in self.strategies.values()))
        if schema is not None:
            names |= {f.source for f in schema.fields}
        # Corpus statistics belong to the collection, not to the embedder (which may serve
        # several collections): an embedder the collection recorded is restored from its
        # record, any other is fitted on these, its first documents.
        recorded = schema.encoders if schema is not None else {}
        embedders = {
            name: self.embedder(name) if name in recorded else self._given(name).fitted(texts) for name in sorted(names)
        }
        chunking = self.chunking
        embedded = {name: self._embedded(e, texts, chunking) for name, e in embedders.items()}
        base: Base = {name: embeddings for name, (embeddings, _) in embedded.items()}
        # Nothing is cut without saying so, nor, where passages were the default, why they are off.
        defaulted_whole = self._chunking is UNSET and chunking is None and (schema is None or not schema.fields)
        why = f" (documents are whole, not in passages: {self.whole_because})" if defaulted_whole else ""
        for e in embedders.values():
            cut = e.truncation(texts) if chunking is None or e.splitter(chunking) is None else None
            if cut is not None:
                warnings.warn(cut.message() + why, TruncationWarning, stacklevel=2)
        wanted: dict[str, VectorField] = {}
        for s in self.strategies.values():
            for f in s.fields(base):
                wanted.setdefault(f.name, f)
        fields = [*(schema.fields if schema is not None else ()), *wanted.values()]
        splits = {name: split for name, (_, split) in embedded.items()}
        base = {**base, **self._passage_embeddings(fields, embedders, splits)}
        encoders = {name: state for name, e in embedders.items() if (state := e.encoder_state())}
        passages = chunking.record() if chunking is not None else None
        schema = self.store.ensure_schema(Schema(tuple(wanted.values()), encoders, passages))
        vectors = {f.name: derive(f, base, for_query=False) for f in schema.fields}
        maps = _passage_maps(schema, vectors, splits)
        with tqdm(
            total=len(docs), desc="upsert", unit="doc", disable=not self.show_progress or len(docs) <= UPSERT_BATCH
        ) as bar:
            for start in range(0, len(docs), UPSERT_BATCH):
                rows = range(start, min(start + UPSERT_BATCH, len(docs)))
                try:
                    self.store.upsert(
                        docs[start : rows.stop],
                        {n: v.take(rows) for n, v in vectors.items()},
                        maps[start : rows.stop] if maps is not None else None,
                    )
                except StoreError as exc:
                    raise unwritten(exc, docs, start, rows.stop) from exc
                bar.update(len(rows))
        self.store.optimize()
        return len(docs)

    def document_embeddings(self, name: str, texts: Sequence[str], passages: bool = False) -> Embeddings:
        """Documents' embeddings by the embedder `name` as the collection holds them: per document,
        a dense model's passage vectors (a multi-vector) where it is split into passages; with
        passages=True, BM25's of each passage, as a per-passage sparse field holds them."""
        texts = validate_texts(texts)
        if not passages:
            return self._embedded(self.embedder(name), texts, self.chunking)[0]
        schema = self.store.schema
        field = schema.passage_map_field if schema is not None else None
        if schema is None or field is None:
            raise UnsupportedStrategyError(f"{self.store!r} holds no passages: index it in passages first")
        fields = [f for f in schema.fields if f.source == name and f.per_passage and f.kind is EmbeddingKind.SPARSE]
        if not fields:
            raise UnsupportedStrategyError(f"{self.store!r} holds no field of {name!r}'s passage embeddings")
        splitter = self.embedder(field.source).splitter(self.chunking) if self.chunking is not None else None
        assert splitter is not None  # a collection with a passage map field is split by that field's model
        splits = {field.source: [splitter.split(t) for t in texts]}
        return self._passage_embeddings([field, *fields], {name: self.embedder(name)}, splits)[passage_embeddings(name)]

    def _embedded(
        self, embedder: Embedder, texts: list[str], chunking: Chunking | None
    ) -> tuple[Embeddings, list[list[Passage]] | None]:
        """The documents' embeddings by `embedder`: of their passages where they are split (a dense
        model's passage vectors, a multi-vector model's tokens of every passage, per document),
        else of the whole texts; and the passages (None: not split)."""
        splitter = embedder.splitter(chunking) if chunking is not None else None
        if splitter is None:
            return embedder.embed_documents(texts), None
        split = [splitter.split(t) for t in texts]
        flat = embedder.embed_documents([p.text for passages in split for p in passages])
        return grouped(flat, [len(passages) for passages in split]), split

    @staticmethod
    def _passage_embeddings(
        fields: Sequence[VectorField], embedders: dict[str, Embedder], splits: Mapping[str, list[list[Passage]] | None]
    ) -> dict[str, Embeddings]:
        """The passage embeddings of the embedders that embed whole texts too and fill a per-passage
        field (BM25), under `passage_embeddings(name)`: of the passages the collection's passage map
        holds (its dense model's split). An embedder with no statistics of passages yet is fitted to
        these, in `embedders`, so the collection records them."""
        wanted = dict.fromkeys(f.source for f in fields if f.per_passage and f.kind is EmbeddingKind.SPARSE)
        if not wanted:
            return {}
        # The collection's fields, then the new ones: its passage map's field comes first (Schema).
        map_field = next(f for f in fields if f.per_passage and f.kind is EmbeddingKind.MULTIVECTOR)
        split = splits[map_field.source]
        assert split is not None  # a per-passage sparse field comes with dense passage vectors (PassageBM25)
        texts = [p.text for passages in split for p in passages]
        out: dict[str, Embeddings] = {}
        for name in wanted:
            embedders[name] = embedders[name].fitted_to_passages(texts)
            flat = embedders[name].for_passages().embed_documents(texts)
            out[passage_embeddings(name)] = grouped(flat, [len(passages) for passages in split])
        return out

    def holds(self, documents: Iterable[Document]) -> bool:
        """Whether the collection holds exactly these documents (same ids, texts and metadata,
        nothing else) in every field the strategies need, so indexing them again would rewrite
        the same vectors: the embedders are the collection's own (checked against its manifest
        when this Retriever was made), and every upsert writes all of a document's fields."""
        docs = validate_documents(documents)
        schema = self.store.schema
        if schema is None or any(n not in schema for s in self.strategies.values() for n in s.field_names):
            return False
        if self.store.count() != len(docs):
            return False
        stored = {d.id: d for d in self.store.get([d.id for d in docs])}
        return all(stored.get(d.id) == d for d in docs)

    def delete(self, ids: Sequence[str]) -> int:
        return self.store.delete(ids)

    def drop(self) -> None:
        """Delete the whole collection (documents, vectors, stored settings), to index it anew."""
        self.store.drop()

    def delete_where(self, filter: Filter) -> int:
        return self.store.delete_where(filter)

    def count(self) -> int:
        return self.store.count()

    # --- search ---------------------------------------------------------------------------------
    def search(
        self, query: str, k: int = 10, filter: Filter | None = None, strategy: StrategySpec | None = None
    ) -> list[Hit]:
        """The top-k documents for one query.

        Args:
            query: the query text.
            k: how many hits.
            filter: metadata conditions, all holding: {"lang": "en"} (equality), {"lang": ["en",
                "fr"]} (any of), {"year": Range(gte=2020)}; a list-valued field matches when any
                element does.
            strategy: a strategy given at construction, by name or object (default: the first).
        """
        return self.search_many([_one_query(query)], k, filter, strategy)[0]

    def search_many(
        self, queries: Sequence[str], k: int = 10, filter: Filter | None = None, strategy: StrategySpec | None = None
    ) -> list[list[Hit]]:
        """Top-k for each query; queries are embedded together (much faster than one by one), and
        searched together: one engine request per stage for the whole batch where the engine
        batches (VectorStore.search_many)."""
        strategy_, base, schema = self._prepare(queries, k, strategy)
        found = self.store.search_many(_planned(queries, k, strategy_, base, schema), filter)
        return self._with_best_passages(found, base, schema)

    def search_passages(
        self, query: str, k: int = 10, filter: Filter | None = None, strategy: StrategySpec | None = None
    ) -> list[Hit]:
        """The top-k passages for one query, for a prompt: of the strategy's top-k documents, their
        passages ranked by their own score (the cosine of a passage vector and the query's by the
        collection's passage model, read from the int8 copy in the document's passage map: within
        2e-3 of float32's), several from one document where they score so. Each Hit's id is its
        document's, its text and `passage` the passage's. For `dense`, these are the collection's
        k best passages (no passage of a lower document can outscore that document's best); for
        a strategy that finds documents otherwise (bm25, hybrid, colbert, keyword), the passage
        model ranks the passages of the documents it found.

        Raises:
            UnsupportedStrategyError: the collection is not split into passages.
        """
        strategy_, base, schema = self._prepare([_one_query(query)], k, strategy)
        (hits,) = self.store.search_many(_planned([query], k, strategy_, base, schema), filter)
        scored = [
            (float(score), hit, i)
            for hit, scores in zip(hits, self._passage_scores(hits, base, 0, schema))
            for i, score in enumerate(scores)
        ]
        scored.sort(key=lambda s: (-s[0], s[1].id, s[2]))
        return [
            Hit(hit.id, score, (p := self._passage_map(hit).passage(hit.text, i)).text, hit.metadata, p)
            for score, hit, i in scored[:k]
        ]

    def plans(self, queries: Sequence[str], k: int = 10, strategy: StrategySpec | None = None) -> list[Plan]:
        """The search plan each query becomes (what `search_many` sends the store): the queries
        embedded together, each plan in the search language (ragembed.search.plan)."""
        return _planned(queries, k, *self._prepare(queries, k, strategy, locate=False))

    async def asearch(
        self, query: str, k: int = 10, filter: Filter | None = None, strategy: StrategySpec | None = None
    ) -> list[Hit]:
        """Async twin of `search`: the model runs in a worker thread; the store's search awaits
        its engine's async client where it has one (`store.capabilities.native_async`: the Qdrant
        and Weaviate servers),
        else runs in a worker thread too."""
        return (await self.asearch_many([_one_query(query)], k, filter, strategy))[0]

    async def asearch_many(
        self, queries: Sequence[str], k: int = 10, filter: Filter | None = None, strategy: StrategySpec | None = None
    ) -> list[list[Hit]]:
        """Async twin of `search_many`: the queries are embedded together, then searched at once."""
        prepared = await asyncio.to_thread(self._prepare, queries, k, strategy)  # the model: a worker thread
        found = await self.store.asearch_many(_planned(queries, k, *prepared), filter)
        _, base, schema = prepared
        if schema.passage_map_field is None:
            return found
        return await asyncio.to_thread(self._with_best_passages, found, base, schema)

    async def aindex(self, documents: Iterable[Document]) -> int:
        """Async twin of `index`, run in a worker thread: embedding is the whole cost of indexing on
        a CPU, and it does not yield to the event loop."""
        return await asyncio.to_thread(self.index, documents)

    def close(self) -> None:
        self.store.close()

    async def aclose(self) -> None:
        await self.store.aclose()

    async def __aenter__(self) -> Retriever:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> Retriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ------------------------------------------------------------------------------
    def _prepare(
        self, queries: Sequence[str], k: int, strategy: StrategySpec | None, locate: bool = True
    ) -> tuple[Strategy, Base, Schema]:
        check_positive("k", k, integer=True)
        texts = validate_texts(queries, "queries")
        chosen = self.strategy if strategy is None else parse_strategy(strategy)
        if isinstance(strategy, str):  # a name means the instance given at construction, if any
            chosen = self.strategies.get(chosen.name, chosen)
        chosen = self._with_reranker(chosen)
        self._check_servable(chosen)
        schema = self.store.schema
        if schema is None:
            raise StoreError(missing_collection_message(self.store))
        chosen.fields_in(schema)  # fails early, naming the missing fields
        # A collection in passages names every hit's best passage with the map field's embedder,
        # which a strategy that searches no passage vectors (bm25, colbert, keyword) adds.
        field = schema.passage_map_field
        locator = {field.source} if locate and field is not None else set()
        needs = sorted(chosen.needs | locator)
        return chosen, {name: self.embedder(name).embed_queries(texts) for name in needs}, schema

    def _passage_scores(self, hits: list[Hit], base: Base, row: int, schema: Schema) -> list[np.ndarray]:
        """Each hit's passage scores against the query `row` of `base`: the cosine of each stored
        passage vector's int8 copy and the query's by the map field's embedder, read from the hit's
        passage map, whichever strategy found the hit (refused where the collection is not split)."""
        field = schema.passage_map_field
        if field is None:
            raise UnsupportedStrategyError(
                f"{self.store!r} is not split into passages: search_passages ranks passage vectors; "
                "index it with passages=True (CLI: --passages)"
            )
        query = derive(field, {field.source: base[field.source].take([row])}, for_query=True)
        (q,) = narrow(query, MultiVectorEmbeddings).vectors
        return PassageMap.scores([self._passage_map(hit) for hit in hits], q[0])

    def _passage_map(self, hit: Hit) -> PassageMap:
        """A hit's stored passage map, decoded (a StoreError where it is missing or damaged)."""
        why = "is stored without its passage map (written before ragembed kept one)"
        if hit.passage_map is not None:
            try:
                _ = hit.passage_map.spans  # decodes it
                return hit.passage_map
            except ValueError as exc:  # bad base64, a short buffer, bad JSON
                why = f"has a damaged passage map ({exc})"
        raise StoreError(f"document {hit.id!r} of {self.store!r} {why}; drop the collection and index it again")

    def _with_best_passages(self, found: list[list[Hit]], base: Base, schema: Schema) -> list[list[Hit]]:
        """Each query's hits (`found[row]` for query `row` of `base`), each with its best passage
        where the collection is split into passages (the one a reranker named, else the best by the
        passage model), and without the stored passage map (the store's, not the caller's)."""
        if schema.passage_map_field is None:
            return found
        return [
            [
                replace(
                    hit,
                    passage=hit.passage or self._passage_map(hit).passage(hit.text, int(np.argmax(s))),
                    passage_map=None,
                )
                for hit, s in zip(hits, self._passage_scores(hits, base, row, schema))
            ]
            for row, hits in enumerate(found)
        ]

    def _with_reranker(self, strategy: Strategy) -> Strategy:
        """A strategy that reranks with a cross-encoder it was not given, given this Retriever's
        (without one, its search is refused before the store is asked; indexing needs none)."""
        if not isinstance(strategy, Reranked) or not strategy.by_cross_encoder or strategy.reranker is not None:
            return strategy
        return strategy if self.reranker is None else replace(strategy, reranker=self.reranker)

    def _check_servable(self, strategy: Strategy) -> None:
        store = type(self.store).__name__
        check_servable(strategy.name, strategy.kinds, strategy.needs_keyword, self.store.capabilities, store)
        if strategy.needs_passages:
            refusal = strategy.passage_refusal(self.store.capabilities)
            if refusal is not None:
                raise UnsupportedStrategyError(f"{store}: strategy {strategy.name!r}: {refusal}")
            if self.chunking is None:
                self._refuse_whole(strategy)
        given = {name: e.kind for name, e in self._embedders.items()}
        check_embedders_given(strategy.name, strategy.embedders, given)

    def _refuse_whole(self, strategy: Strategy) -> None:
        """Refuse a strategy that searches passages where documents are whole, saying why they are."""
        wants = f"strategy {strategy.name!r} scores a document by its best passage"
        schema = self.store.schema
        if self._chunking is not UNSET:
            raise UnsupportedStrategyError(f"{wants}, and whole documents were asked for; leave passages=False out")
        if schema is None or not schema.fields:  # a new collection another strategy keeps whole
            raise UnsupportedStrategyError(
                f"{wants}, and a new collection here holds whole documents: {self.whole_because}"
            )
        raise SchemaMismatchError(  # the collection's record (`ragembed eval` rebuilds on this error)
            f"{wants}, and {self.store!r} holds whole documents; index in passages, into another collection "
            "(CLI: --collection NAME, or --recreate)"
        )

    def searched_fields(self, strategy: StrategySpec | None = None) -> list[VectorField]:
        """The collection's fields a strategy scans (not those it only rescores with): what its
        index costs per document."""
        chosen = self.strategy if strategy is None else parse_strategy(strategy)
        schema = self.store.schema
        if schema is None:
            raise StoreError(missing_collection_message(self.store))
        return [schema[name] for name in chosen.searched_fields]

    def embedder(self, name: str) -> Embedder:
        """The embedder of that name ("dense", "sparse", "multivector" or one given in
        `embedders`) as the collection encodes with it: the one given (or the default, created on
        first use), restored from the collection's manifest where it has a record of that name
        (the model checked, BM25's statistics carried over). The embedder given is never
        changed, so several Retrievers can share it.

        Raises:
            EncoderMismatchError: the collection was encoded by an embedder this one cannot stand
                in for (another model, runtime, pool factor or tokeniser).
        """
        given = self._given(name)
        schema = self.store.schema
        state = schema.encoders.get(name) if schema is not None else None
        if not state:
            return given
        known = self._restored.get(name)
        if known is None or known[0] != state:
            known = (state, given.restored(state))
            self._restored[name] = known
        return known[1]

    def _given(self, name: str) -> Embedder:
        if name not in self._embedders:
            kind = next((k for k, default in DEFAULT_EMBEDDER.items() if default == name), None)
            if kind is None:
                raise InvalidInputError(
                    f"no embedder named {name!r}: pass it to the Retriever (embedders={{{name!r}: ...}})"
                )
            self._embedders[name] = _default_embedder(kind, self.show_progress)
        return self._embedders[name]


_DEFAULTS = {
    EmbeddingKind.DENSE: "DenseEmbedder()",
    EmbeddingKind.SPARSE: "BM25Embedder()",
    EmbeddingKind.MULTIVECTOR: "ColBERTEmbedder()",
}


def _named_embedders(
    dense: Embedder | None, sparse: Embedder | None, multivector: Embedder | None, named: Mapping[str, Embedder] | None
) -> dict[str, Embedder]:
    """The embedders given, by name: the three keyword arguments are the default names'."""
    if named is not None and not isinstance(named, Mapping):
        raise InvalidInputError(f"embedders must map names to Embedders, got {type(named).__name__}")
    out: dict[str, Embedder] = {}
    for kind, given in (
        (EmbeddingKind.DENSE, dense),
        (EmbeddingKind.SPARSE, sparse),
        (EmbeddingKind.MULTIVECTOR, multivector),
    ):
        if given is not None:
            if not isinstance(given, Embedder) or given.kind is not kind:
                raise InvalidInputError(
                    f"the {kind.value} embedder slot got {given!r}; pass a {kind.value} Embedder "
                    f"(for example {_DEFAULTS[kind]})"
                )
            out[DEFAULT_EMBEDDER[kind]] = given
    for key, given in (named or {}).items():
        name = check_embedder_name(key)
        if not isinstance(given, Embedder):
            raise InvalidInputError(f"embedders[{name!r}] is {given!r}, not an Embedder")
        if name in out and out[name] is not given:
            raise InvalidInputError(f"two embedders named {name!r}: give it once (embedders= or its keyword argument)")
        out[name] = given
    return out


def unwritten(exc: StoreError, docs: list[Document], start: int, stop: int) -> PartialWriteError:
    """The error for an index() that stopped at the batch docs[start:stop]: `failed` names every
    document that is not, or not surely, written (what the store refused or could not confirm,
    and every later batch), so the caller knows exactly what is missing."""
    if isinstance(exc, PartialWriteError):
        failed = dict(exc.failed)  # the store confirmed the rest of this batch
    else:
        failed = PartialWriteError.not_confirmed((d.id for d in docs[start:stop]), exc)
    failed.update({d.id: "not attempted: indexing stopped at an earlier batch" for d in docs[stop:]})
    return PartialWriteError(
        f"indexing stopped: {len(failed)} of {len(docs)} documents are not (or not surely) written "
        f"(their ids are in this error's .failed); the others are stored. Cause: {exc}. Indexing "
        "the same documents again is safe: upserts replace by id, so nothing is duplicated",
        failed,
    )


def _passage_maps(
    schema: Schema, vectors: Mapping[str, Embeddings], splits: Mapping[str, list[list[Passage]] | None]
) -> list[PassageMap] | None:
    """Each document's passage map (None: the collection is not in passages): the spans of its
    passages as the map field's embedder split it, and that field's vectors of them."""
    field = schema.passage_map_field
    if field is None:
        return None
    split = splits[field.source]
    assert split is not None  # a per-passage field is only made from split documents
    rows = narrow(vectors[field.name], MultiVectorEmbeddings).vectors
    return [passage_map(passages, row) for passages, row in zip(split, rows)]


def _chunking(passages: bool | None, size: int | str | None, overlap: int | None) -> Chunking | Unset | None:
    """The passage settings given to a Retriever (UNSET: none, follow the collection)."""
    if passages is not None and not isinstance(passages, bool):
        raise InvalidInputError(f"passages must be True, False or None, got {passages!r}")
    if passages is False and (size is not None or overlap is not None):
        raise InvalidInputError(
            "chunk_size and chunk_overlap set how documents are split: leave them out with passages=False"
        )
    if passages is None and size is None and overlap is None:
        return UNSET
    if passages is False:
        return None
    overlap = 0 if overlap is None else overlap
    if isinstance(size, str):
        if size != "window":
            raise InvalidInputError(f"chunk_size must be a whole number of word pieces or 'window', got {size!r}")
        return Chunking(None, overlap)
    return Chunking(DEFAULT_CHUNKING.size if size is None else size, overlap)


def _default_embedder(kind: EmbeddingKind, show_progress: bool) -> Embedder:
    if kind is EmbeddingKind.DENSE:
        from ragembed.embedders.dense import DenseEmbedder

        return DenseEmbedder(show_progress=show_progress)
    if kind is EmbeddingKind.SPARSE:
        from ragembed.embedders.sparse import BM25Embedder

        return BM25Embedder(show_progress=show_progress)
    from ragembed.embedders.colbert import ColBERTEmbedder

    return ColBERTEmbedder(show_progress=show_progress)


def _one_query(query: str) -> str:
    if not isinstance(query, str):
        raise InvalidInputError(f"query must be a string, got {type(query).__name__}; for many, use search_many")
    return query


def _planned(queries: Sequence[str], k: int, strategy: Strategy, base: Base, schema: Schema) -> list[Plan]:
    return [strategy.plan(_row(base, i), schema, k, text) for i, text in enumerate(queries)]


def _row(base: Base, i: int) -> dict[str, Embeddings]:
    return {name: emb.take([i]) for name, emb in base.items()}
