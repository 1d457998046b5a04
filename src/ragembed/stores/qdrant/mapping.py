"""The one mapping of ragembed onto Qdrant's model, shared by both Qdrant adapters (client.py:
qdrant-client; edge.py: the embedded qdrant-edge engine): how each field is laid out
(`vector_layout`), what query a plan node becomes (`query_of`, `needs_stages`), filters, payloads
and the vectors sent.

Both APIs build the same Qdrant objects under different class names and signatures. Every
decision is made here, in API-neutral values; an adapter only spells them in its API's classes
(`FilterClasses` names the filter constructors, so one filter translation serves both).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ragembed.search import executor
from ragembed.search.capabilities import FilterKeys
from ragembed.search.filters import Condition, Range
from ragembed.search.plan import Fusion, Plan, Rescore, VectorSearch
from ragembed.search.ranking import top_keys
from ragembed.search.schema import Schema, VectorField
from ragembed.stores.ids import passage_point_id
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
    narrow,
)

SCHEMA_KEY = "ragembed_schema"
PASSAGE_MAP_KEY = "passage_map"
# A passage point's document id and position (passage points: see `passage_payload`); a document
# point has neither.
PASSAGE_OF_KEY = "passage_of"
PASSAGE_INDEX_KEY = "passage"
# Passages asked for per document wanted, at first (`by_passages` asks for more until the answer
# is exact; benchmarks/passage_points.py measured 4 on SciFact-long's 34 passages a document).
PASSAGES_PER_DOCUMENT = 4
# '.' and '[' would be read as a JSON path into the payload, so Qdrant filters on these keys only.
QDRANT_FILTER_KEYS = FilterKeys(re.compile(r"^[A-Za-z0-9_-]+$"), "letters, digits, '_' and '-'")


def payload_of(doc: Document, passage_map: PassageMap | None = None) -> dict[str, Any]:
    # Metadata sits under one key, so filters address "metadata.<key>" and user keys can never
    # collide with ragembed's own. A JSON copy gives it back bit for bit: qdrant-edge-py 0.9
    # returns some floats one ulp off (0.20275631546974182 comes back as ...185). The passage
    # map is one unindexed string, returned with the hit at no extra request.
    payload = {
        "doc_id": doc.id,
        "text": doc.text,
        "metadata": dict(doc.metadata),
        "metadata_json": json.dumps(dict(doc.metadata)),
    }
    if passage_map is not None:
        payload[PASSAGE_MAP_KEY] = passage_map.encoded
    return payload


def passage_payload(doc: Document, index: int) -> dict[str, Any]:
    """A passage point's payload: its document's id, its position, and the document's metadata
    (filters select passage points as they select documents)."""
    return {PASSAGE_OF_KEY: doc.id, PASSAGE_INDEX_KEY: index, "metadata": dict(doc.metadata)}


def passage_points(
    documents: list[Document],
    vectors: Mapping[str, Embeddings],
    fields: list[VectorField],
    sparse: Callable[[list[int], list[float]], Any],
    terms_payload: Mapping[str, str] | None = None,
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Every passage point of `documents`: its id, its vector in each per-passage field of
    `fields` (dense, or BM25's sparse, spelled by `sparse`), and its payload (`passage_payload`,
    plus the terms of the sparse fields `terms_payload` names, under the key it gives them)."""
    points = []
    for row, doc in enumerate(documents):
        rows, sets = {}, {}  # a dense field's passage vectors; a sparse field's (BM25's)
        for f in fields:
            if f.kind is EmbeddingKind.SPARSE:
                sets[f.name] = narrow(vectors[f.name], SparsePassageEmbeddings).passages[row]
            else:
                rows[f.name] = narrow(vectors[f.name], MultiVectorEmbeddings).vectors[row]
        for i in range(len(next(iter(rows.values())))):  # a sparse field comes with a dense one (PassageBM25)
            held = {name: passages[i].tolist() for name, passages in rows.items()}
            held |= {name: sparse(s.indices[i].tolist(), s.values[i].tolist()) for name, s in sets.items()}
            terms = {key: sets[name].indices[i].tolist() for name, key in (terms_payload or {}).items()}
            points.append((passage_point_id(doc.id, i), held, passage_payload(doc, i) | terms))
    return points


class PassageRows:
    """Documents' passage vectors gathered from their passage points, read in any order."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[int, Any]] = {}

    def add(self, payload: Mapping[str, Any], vector: Any) -> None:
        self._rows.setdefault(payload[PASSAGE_OF_KEY], {})[payload[PASSAGE_INDEX_KEY]] = vector

    def by_document(self) -> dict[str, np.ndarray]:
        """Each document's passage vectors, in passage order."""
        return {doc: np.asarray([held[i] for i in sorted(held)]) for doc, held in self._rows.items()}


def metadata_of(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A point's metadata: from `metadata_json` (ragembed's exact copy, key order and types kept)
    where the payload has it, else from the `metadata` object (points written without it)."""
    if "metadata_json" in payload:
        metadata: dict[str, Any] = json.loads(payload["metadata_json"])
        return metadata
    return dict(payload.get("metadata") or {})


def document_of(payload: Mapping[str, Any]) -> Document:
    return Document(payload["doc_id"], payload["text"], metadata_of(payload))


def hit_of(payload: Mapping[str, Any], score: float) -> Hit:
    stored = payload.get(PASSAGE_MAP_KEY)
    passage_map = PassageMap(stored) if stored is not None else None
    return Hit(payload["doc_id"], float(score), payload["text"], metadata_of(payload), passage_map=passage_map)


@dataclass(frozen=True)
class FilterClasses:
    filter: Callable[..., Any]
    field_condition: Callable[..., Any]
    match_value: Callable[..., Any]
    match_any: Callable[..., Any]
    range: Callable[..., Any]
    # How a bool must be passed to match_value. qdrant-edge-py 0.9 reads a Python bool as the
    # integer 0/1 (so it never matches a JSON boolean) but a numpy bool as a bool.
    boolean: Callable[[bool], Any] = bool


def qdrant_filter(filter: Mapping[str, Condition] | None, classes: FilterClasses) -> Any:
    """A ragembed filter as a Qdrant payload filter (numbers compare as numbers: 1 == 1.0)."""
    if not filter:
        return None
    must = []
    for key, condition in filter.items():
        path = f"metadata.{key}"
        values = condition if isinstance(condition, tuple) else (condition,)
        if isinstance(condition, Range):
            must.append(
                classes.field_condition(
                    key=path,
                    range=classes.range(gt=condition.gt, gte=condition.gte, lt=condition.lt, lte=condition.lte),
                )
            )
            continue
        options = []
        strings = [v for v in values if isinstance(v, str)]
        if strings:
            options.append(classes.field_condition(key=path, match=classes.match_any(any=strings)))
        for v in values:
            if isinstance(v, bool):
                options.append(classes.field_condition(key=path, match=classes.match_value(value=classes.boolean(v))))
            elif isinstance(v, (int, float)):
                number = float(v)
                options.append(classes.field_condition(key=path, range=classes.range(gte=number, lte=number)))
        must.append(options[0] if len(options) == 1 else classes.filter(should=options))
    return classes.filter(must=must)


@dataclass(frozen=True)
class VectorLayout:
    """How one dense or multi-vector field is laid out in a Qdrant collection."""

    size: int
    cosine: bool  # else dot product
    # A named multivector compared by MAX_SIM, HNSW off (m=0): scored exactly, by full scan or as a
    # rescoring stage, as Qdrant recommends.
    multivector: bool
    # FLOAT32: plain HNSW. INT8 / BINARY: Qdrant's scalar or binary quantization kept in RAM, the
    # float32 originals on disk (a multi-vector field's token vectors too).
    quantization: Precision
    query_8bit: bool  # an asymmetric binary field: the query at 8 bits against 1-bit documents
    datatype: Datatype  # how the engine stores the (multi-vector) field's vectors themselves
    # The full vectors memory-mapped from disk instead of held in RAM: always for a quantized
    # field's float32 originals (the quantized index is what searches read), for the others when
    # the store is asked to (vectors_on_disk).
    on_disk: bool


def vector_layout(
    f: VectorField, native_quantization: bool, vectors_on_disk: bool = False, passage_points: bool = False
) -> VectorLayout:
    """`f`'s layout; without native quantization (local mode) a quantized or float16 field is
    stored as the float32 vectors of `VectorField.scored_as_float`. With passage_points, a
    per-passage field is one vector a point (each passage a point of its own, HNSW-indexed)."""
    quantization = f.precision if native_quantization else Precision.FLOAT32
    return VectorLayout(
        on_disk=quantization is not Precision.FLOAT32 or vectors_on_disk,
        size=f.dim,
        cosine=f.distance == "cosine",
        multivector=f.kind is EmbeddingKind.MULTIVECTOR and not (f.per_passage and passage_points),
        quantization=quantization,
        query_8bit=quantization is Precision.BINARY and f.asymmetric,
        datatype=f.datatype if native_quantization else Datatype.FLOAT32,
    )


@dataclass(frozen=True)
class QuantizedSearch:
    """How a query searches a quantized field: the quantized index alone, or rescored with the
    float32 originals after fetching `oversampling` times the limit."""

    rescore: bool
    oversampling: float | None = None


@dataclass(frozen=True)
class Query:
    """One Qdrant query node (the query itself or one of its prefetches) that a plan node becomes."""

    field: str
    vector: Embeddings  # the plan's query embeddings for `field`
    limit: int
    quantized: QuantizedSearch | None  # None: a float32 (or client-side quantized) field
    prefetch: tuple[Query, ...]

    def scaled(self, factor: float) -> Query:
        """The same query with every prefetch stage's limit times `factor` (a search of passage
        points asks for `factor` passages a document wanted, at every stage)."""
        stages = tuple(replace(p.scaled(factor), limit=math.ceil(p.limit * factor)) for p in self.prefetch)
        return replace(self, prefetch=stages)


# A request node's parts as an API spells them: (the query's own keywords, prefetch stages,
# filter, search params, limit) -> the API's Prefetch; a request's also the payload it returns
# (`payload_wanted`) -> the API's QueryRequest.
Node = Callable[[dict[str, Any], "list[Any] | None", Any, Any, int], Any]
RequestNode = Callable[[dict[str, Any], "list[Any] | None", Any, Any, int, "bool | list[str]"], Any]


@dataclass(frozen=True)
class RequestClasses:
    """How one Qdrant API spells a search request, as FilterClasses spells filters: both APIs
    build the same tree (a query, its prefetch stages with the filter on each, search params), so
    `request_of` builds it once. `vector` gives a query node's own keywords (the vector and the
    field it searches); `params` spells a QuantizedSearch (None for a float32 field)."""

    request: RequestNode
    stage: Node
    vector: Callable[[Query], dict[str, Any]]
    params: Callable[[QuantizedSearch | None], Any]


def request_of(query: Query, qfilter: Any, limit: int, api: RequestClasses, payload: bool | list[str]) -> Any:
    """The API's request for `query` (with `limit` hits returning `payload`), its prefetch stages
    nested in it."""
    stages = stages_of(query, qfilter, api)
    return api.request(api.vector(query), stages, qfilter, api.params(query.quantized), limit, payload)


def stages_of(query: Query, qfilter: Any, api: RequestClasses) -> list[Any] | None:
    """`query`'s prefetch stages as the API's Prefetch objects; the filter goes on every stage."""
    stages = [
        api.stage(api.vector(stage), stages_of(stage, qfilter, api), qfilter, api.params(stage.quantized), stage.limit)
        for stage in query.prefetch
    ]
    return stages or None


def query_of(plan: Plan, schema: Schema, native_quantization: bool) -> Query:
    """The Qdrant query a Rescore or VectorSearch plan node (with its prefetch stages) becomes."""
    # A fusion never gets here (needs_stages sends it to executor.by_stage, which fuses itself), nor a
    # keyword search (check_plan refuses it: Qdrant has no BM25 over the text).
    if isinstance(plan, Rescore):
        if not native_quantization:  # no quantized index: the two stages, client-side quantized scores first
            return query_of(plan.as_stages(), schema, native_quantization)
        # A multi-vector field's originals are its own; a dense field's twin holds the same vectors
        # that Qdrant keeps on disk beside the quantized index, so one query on `field` does both.
        rescored = QuantizedSearch(rescore=True, oversampling=plan.candidates / plan.limit)
        prefetch = tuple(query_of(p, schema, native_quantization) for p in plan.prefetch)
        return Query(plan.field, plan.query, plan.limit, rescored, prefetch)
    assert isinstance(plan, VectorSearch), plan
    quantized = schema[plan.field].precision is not Precision.FLOAT32 and native_quantization
    return Query(
        plan.field,
        plan.query,
        plan.limit,
        QuantizedSearch(rescore=False) if quantized else None,
        tuple(query_of(p, schema, native_quantization) for p in plan.prefetch),
    )


def needs_stages(plan: Plan, sharded: bool, passages: Schema | None = None) -> bool:
    """Whether one Qdrant query would rank `plan` differently from ragembed's plan semantics
    (the memory store's), so that its stages must run one query each (executor.by_stage):
      - any fusion: Qdrant cuts each stage at its limit with ties in no set order (BM25 scores
        tie often, so a tied document at the cut-off is in or out at random) and its RRF breaks
        no ties, while ragembed decides every tie by document id; its weighted RRF also stretches
        ranks (1 / (rank / w + k)) where ragembed's, like Elasticsearch's, scales scores (w / (k + rank));
      - on a sharded collection, a stage with candidate stages under it: Qdrant runs it on each
        shard apart, each rescoring its own top candidates (a Rescore step without prefetch is
        one search on the quantized index, and is left to the engine);
      - with `passages` (the schema of a collection keeping passages as points of their own), a
        plan mixing passage and document stages (hybrid, colbert+dense): those are different
        points, which one Qdrant query cannot join; and a passage stage with candidate stages
        under it (funnel): Qdrant would hand it the candidates' passages, covering more or fewer
        documents than the candidate stage's limit, where ragembed rescores that many documents."""
    if passages is not None and len(passage_kinds(plan, passages)) > 1:
        return True
    if isinstance(plan, Fusion):
        return True
    if (
        isinstance(plan, (VectorSearch, Rescore))
        and plan.prefetch
        and (sharded or (passages is not None and passages[plan.field].per_passage))
    ):
        return True
    return any(needs_stages(p, sharded, passages) for p in plan.prefetch)


def passage_kinds(plan: Plan, schema: Schema) -> set[bool]:
    """Whether each vector stage of `plan` searches a per-passage field ({True}: passages only)."""
    own = {schema[plan.field].per_passage} if isinstance(plan, (VectorSearch, Rescore)) else set()
    return own.union(*(passage_kinds(p, schema) for p in plan.prefetch))


@dataclass(frozen=True)
class PointSearch:
    """An engine query of documents' points (an executor.Ask's request): `plan` under `qfilter`,
    its hits with their documents (text, metadata, passage map) or, for a candidate stage, with
    their ids and scores only (executor.by_stage)."""

    plan: Plan
    qfilter: Any
    documents: bool


@dataclass(frozen=True)
class PassageSearch:
    """An engine query of passage points (an executor.Ask's request): `plan`, whose every stage
    searches a per-passage field, with its stages' limits times `factor` passages a document."""

    plan: Plan
    qfilter: Any
    factor: float


@dataclass(frozen=True)
class DocumentPoints:
    """An engine read of documents' own points by id (an executor.Ask's request)."""

    ids: tuple[str, ...]


Request = PointSearch | PassageSearch | DocumentPoints


def payload_wanted(request: Request) -> bool | list[str]:
    """The payload an engine returns for `request`: all of it where the hits carry their
    documents, else only the key naming each hit's document."""
    if isinstance(request, PassageSearch):
        return [PASSAGE_OF_KEY]
    if isinstance(request, PointSearch) and not request.documents:
        return ["doc_id"]
    return True


def hit_reader(request: Request) -> Callable[[Mapping[str, Any], float], Hit]:
    """How a point the engine returned for `request` (its payload as `payload_wanted` asked, its
    score) becomes a hit."""
    if isinstance(request, PassageSearch):
        return passage_hit
    if isinstance(request, PointSearch) and not request.documents:
        return lambda payload, score: Hit(payload["doc_id"], float(score))
    return hit_of


def passage_hit(payload: Mapping[str, Any], score: float) -> Hit:
    """A passage point's hit: its document's id and the passage's score (no text: the document's
    point holds it)."""
    return Hit(payload[PASSAGE_OF_KEY], float(score))


def document_points(ids: list[str]) -> executor.Steps[list[Hit]]:
    """The documents `ids` as hits, read from their own points (executor.with_documents's fetch)."""
    (documents,) = yield [executor.Ask(DocumentPoints(tuple(ids)), len(ids))]
    return documents


def by_passages(plan: Plan, qfilter: Any, documents: bool) -> executor.Steps[list[Hit]]:
    """The top plan.limit documents of a plan over passage points, a document's score its best
    passage's (MaxSim over its passages, as the memory store scores them): ask for
    PASSAGES_PER_DOCUMENT passages a document, then more (as many as the documents found so far
    suggest, at least twice as many) until the limit-th document outscores the last passage
    returned (no document unseen can rank above it or tie it) or the passages run out; then, with
    `documents`, read the top documents' points (ties broken by id, as ordered_hits)."""
    asked = PASSAGES_PER_DOCUMENT * plan.limit
    while True:
        (passages,) = yield [executor.Ask(PassageSearch(plan, qfilter, asked / plan.limit), asked)]
        best: dict[str, float] = {}
        for hit in passages:  # best first: a document's first passage is its best
            best.setdefault(hit.id, hit.score)
        ranked = sorted(best.values(), reverse=True)
        if len(passages) < asked or (len(ranked) >= plan.limit and ranked[plan.limit - 1] > passages[-1].score):
            break
        # As many more as the documents found so far suggest (a quarter spare), at least twice as many.
        asked = max(2 * asked, math.ceil(1.25 * asked * plan.limit / max(len(best), 1)))
    top = [Hit(doc, best[doc]) for doc in top_keys(best, plan.limit)]
    return (yield from executor.with_documents(top, document_points)) if documents else top


def one_query(plan: Plan, qfilter: Any, passages: Schema | None, documents: bool) -> executor.Steps[list[Hit]]:
    """A plan node that one Qdrant query answers, as executor steps (the hits with their
    `documents`, or ids and scores only): by_passages where every stage searches passage points
    (`passages`: the schema of a collection keeping them), else the query itself, asked again
    while its cut-off score is tied."""
    if passages is not None and passage_kinds(plan, passages) == {True}:
        return by_passages(plan, qfilter, documents)
    return executor.with_ties(PointSearch(plan, qfilter, documents), plan.limit)


def vector_values(
    f: VectorField,
    emb: Embeddings,
    row: int,
    sparse: Callable[[list[int], list[float]], Any],
    client_side_quantization: bool,
    query: bool = False,
    passage_points: bool = False,
) -> Any:
    """One document's (or, with query=True, the query's) vector for `f`, as the Qdrant APIs take it
    (passage_points: the collection keeps each passage of a per-passage field as a point)."""
    if isinstance(emb, SparseEmbeddings):
        return sparse(emb.indices[row].tolist(), emb.values[row].tolist())
    if isinstance(emb, MultiVectorEmbeddings) and query and f.per_passage and passage_points:
        return emb.vectors[row][0].tolist()  # a passage-point field's query: its one vector
    if isinstance(emb, MultiVectorEmbeddings):
        tokens = emb.vectors[row]
        if client_side_quantization and f.datatype is Datatype.FLOAT16 and not query:
            tokens = tokens.astype(np.float16).astype(np.float32)  # what a float16 field keeps
        return tokens.tolist()
    data = narrow(emb, DenseEmbeddings).data[row : row + 1]
    if client_side_quantization:
        data = f.scored_as_float(data, query)
    return data[0].tolist()
