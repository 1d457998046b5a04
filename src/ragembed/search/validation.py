"""One validation: every refusal of a plan, a schema or a strategy a store cannot serve is made
here, before any engine call, from the schema and the store's declared capabilities (so a test,
the contract suite and the code can never disagree about what a store does)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ragembed.errors import DimensionMismatchError, InvalidInputError, UnsupportedStrategyError
from ragembed.search.capabilities import Capabilities
from ragembed.search.plan import Fusion, KeywordSearch, Plan, Rerank, Rescore, VectorSearch
from ragembed.search.schema import DEFAULT_EMBEDDER, Schema, VectorField
from ragembed.types import (
    Datatype,
    DenseEmbeddings,
    EmbeddingKind,
    Embeddings,
    MultiVectorEmbeddings,
    PassageMap,
    Precision,
    SparsePassageEmbeddings,
    check_positive,
    narrow,
)


def check_storable(wanted: Schema, capabilities: Capabilities, store: str) -> None:
    """Refuse fields the store cannot keep: a kind, a token datatype or a quantized token index
    it does not declare."""
    kinds = capabilities.kinds
    unsupported = [f.name for f in wanted.fields if f.kind not in kinds]
    if unsupported:
        raise UnsupportedStrategyError(
            f"{store} cannot store the fields {unsupported} (it stores "
            f"{sorted(k.value for k in kinds)} vectors); leave them out or use another store"
        )
    kept = capabilities.datatypes
    for f in wanted.fields:
        if f.datatype not in kept:
            turbo = f.datatype in (Datatype.TURBO8, Datatype.TURBO4)
            raise UnsupportedStrategyError(
                f"{store} cannot keep field {f.name!r} as {f.datatype.value} (it keeps "
                f"{', '.join(sorted(d.value for d in kept))} token vectors); "
                + ("TurboQuant storage is Qdrant Edge's (QdrantEdgeStore), or " if turbo else "")
                + "choose a datatype this store keeps ("
                + " or ".join(
                    f"strategy 'colbert+dense:{d.value}'" if d is not Datatype.FLOAT32 else "plain 'colbert+dense'"
                    for d in sorted(kept, key=lambda d: d.bits)
                )
                + ")"
            )
    if not capabilities.sparse_passages:
        for f in wanted.fields:
            if f.per_passage and f.kind is EmbeddingKind.SPARSE:
                raise UnsupportedStrategyError(f"{store} cannot keep field {f.name!r}: {NO_SPARSE_PASSAGES}")
    if not capabilities.quantized_multivectors:
        for f in wanted.fields:
            if f.per_passage and f.precision is not Precision.FLOAT32:
                raise UnsupportedStrategyError(f"{store}: {no_quantized_passages(f.precision)}")
            if f.kind is EmbeddingKind.MULTIVECTOR and f.precision is not Precision.FLOAT32:
                raise UnsupportedStrategyError(
                    f"{store} keeps no {f.precision.value} index beside the float32 token "
                    f"vectors of field {f.name!r}; use 'colbert+dense' or 'colbert+dense:float16' here, or "
                    "a store that does (the Qdrant server, Qdrant Edge qdrant-edge:PATH, Weaviate, memory)"
                )


NO_SPARSE_PASSAGES = (
    "it keeps a document's passages in one multi-vector, and no engine scores a set of sparse vectors; use "
    "'bm25' (the whole text), or the Qdrant server, Qdrant Edge (qdrant-edge:PATH) or memory for 'bm25:passages'"
)


def no_quantized_passages(precision: Precision) -> str:
    """Why a store without quantized multi-vectors cannot search int8/binary passage vectors."""
    return (
        f"it keeps no {precision.value} index of a document's passage vectors (a multi-vector field here); "
        "use Qdrant Edge (qdrant-edge:PATH), the Qdrant server, Weaviate or memory, 'dense', or whole "
        "documents (CLI: --no-passages)"
    )


def check_servable(
    strategy: str, kinds: Iterable[EmbeddingKind], keyword: bool, capabilities: Capabilities, store: str
) -> None:
    """Refuse a strategy whose kinds of vectors or engine BM25 (`keyword`) the store lacks."""
    if keyword and not capabilities.keyword_search:
        raise UnsupportedStrategyError(
            f"strategy {strategy!r} uses the engine's own BM25 over the text, which "
            f"{store} does not offer (Weaviate does); here use 'bm25' or 'hybrid'"
        )
    lacking = set(kinds) - capabilities.kinds
    if lacking:
        raise UnsupportedStrategyError(
            f"{store} cannot store {sorted(k.value for k in lacking)} vectors, "
            f"which strategy {strategy!r} needs; pick another strategy or store"
        )


def check_embedders_given(
    strategy: str, wanted: Mapping[str, EmbeddingKind], given: Mapping[str, EmbeddingKind]
) -> None:
    """Refuse a strategy that names an embedder nobody gave (the default names are made on first
    use) or one that makes another kind of vectors; `given`: the kind each given embedder makes."""
    for name, kind in wanted.items():
        made = given.get(name)
        if made is None and name != DEFAULT_EMBEDDER[kind]:
            raise InvalidInputError(
                f"strategy {strategy!r} encodes with the embedder named {name!r}, which this Retriever "
                f"was not given; pass it: Retriever(..., embedders={{{name!r}: <a {kind.value} Embedder>}})"
            )
        if made is not None and made is not kind:
            raise InvalidInputError(
                f"strategy {strategy!r} needs {kind.value} vectors from the embedder named {name!r}, "
                f"which makes {made.value} vectors; give a {kind.value} Embedder under that name"
            )


def check_fields_present(strategy: str, wanted: Sequence[str], schema: Schema) -> None:
    """Refuse a strategy whose fields the collection lacks, naming them."""
    missing = [n for n in wanted if n not in schema]
    if missing:
        raise UnsupportedStrategyError(
            f"strategy {strategy!r} needs the vector fields {missing}, which this collection "
            f"lacks (it has {schema.names}); index the documents with this strategy first"
        )


def check_embeddings(f: VectorField, emb: Embeddings, query: bool = False) -> None:
    """`emb` as field `f` takes documents' vectors (query: a query's, which is one sparse vector
    for a per-passage sparse field)."""
    if emb.kind is not f.kind:
        raise InvalidInputError(f"field {f.name!r} holds {f.kind.value} vectors, got {emb.kind.value}")
    if isinstance(emb, SparsePassageEmbeddings) and query:
        raise InvalidInputError(f"a query of field {f.name!r} is one SparseEmbeddings, not SparsePassageEmbeddings")
    if not query and f.kind is EmbeddingKind.SPARSE and isinstance(emb, SparsePassageEmbeddings) != f.per_passage:
        wanted = "SparsePassageEmbeddings (a document's passages' vectors)" if f.per_passage else "SparseEmbeddings"
        raise InvalidInputError(f"field {f.name!r} holds {wanted}, got {type(emb).__name__}")
    if isinstance(emb, DenseEmbeddings) and emb.precision is not Precision.FLOAT32:
        raise InvalidInputError(
            f"field {f.name!r} takes float32 vectors, got {emb.precision.value}; stores quantize "
            "int8 and binary fields themselves, so pass the float32 embeddings"
        )
    if isinstance(emb, (DenseEmbeddings, MultiVectorEmbeddings)) and len(emb) and emb.dim != f.dim:
        raise DimensionMismatchError(
            f"field {f.name!r} holds {f.dim}-dimensional vectors, got {emb.dim}; use the model the "
            "collection was indexed with, or index into a new collection"
        )


def check_passage_maps(
    schema: Schema, vectors: Mapping[str, Embeddings], maps: Sequence[PassageMap] | None, count: int
) -> None:
    """A collection in passages takes one passage map per document, matching the passages of
    its map field (Schema.passage_map_field); any other collection takes none."""
    field = schema.passage_map_field
    if field is None:
        if maps is not None:
            raise InvalidInputError(
                "passage maps were given, but the collection holds no per-passage field; upsert without them"
            )
        return
    if maps is None or len(maps) != count:
        raise InvalidInputError(
            f"the collection keeps each document's passages ({field.name!r} is per passage): give one PassageMap "
            f"per document (got {'none' if maps is None else len(maps)} for {count} documents); Retriever.index "
            "makes them"
        )
    rows = narrow(vectors[field.name], MultiVectorEmbeddings).vectors
    for i, (m, passages) in enumerate(zip(maps, rows)):
        if m.codes.shape != passages.shape:
            raise InvalidInputError(
                f"passage map {i} holds {m.codes.shape[0]} vectors of {m.codes.shape[1]} dimensions, but field "
                f"{field.name!r} gets {passages.shape[0]} of {passages.shape[1]} for that document; they must match"
            )
    for f in schema.fields:  # BM25 of each passage: one sparse vector a passage of the map
        if f.per_passage and f.kind is EmbeddingKind.SPARSE:
            sets = narrow(vectors[f.name], SparsePassageEmbeddings)  # check_embeddings refused another form
            for i, (m, held) in enumerate(zip(maps, sets.passages)):
                if len(held) != len(m.spans):
                    raise InvalidInputError(
                        f"document {i} has {len(m.spans)} passages in its passage map but {len(held)} sparse vectors "
                        f"in field {f.name!r}; give one a passage"
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
    check_embeddings(f, query, query=True)
    if len(query) != 1:
        raise InvalidInputError(f"a search stage takes one query vector, got {len(query)}")


def check_plan(schema: Schema, plan: Plan, root: bool = True) -> None:
    if not isinstance(plan, (VectorSearch, Rescore, Fusion, KeywordSearch, Rerank)):
        raise InvalidInputError(
            f"a search plan is a VectorSearch, Rescore, Fusion, KeywordSearch or Rerank, got {type(plan).__name__}"
        )
    check_positive("limit (k)", plan.limit, integer=True)
    if isinstance(plan, Rerank):
        check_rerank(schema, plan, root)
    elif isinstance(plan, Fusion):
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
        check_plan(schema, stage, root=False)


def check_rerank(schema: Schema, plan: Rerank, root: bool) -> None:
    """A Rerank is a plan's root, over one first stage that returns at least `limit` candidates,
    and reads only multi-vector fields the collection holds."""
    if not root:
        raise InvalidInputError(
            "a Rerank stage scores a search's final candidates client-side, so it is the root of a plan; "
            "put the other stages under it, not it under them"
        )
    if len(plan.prefetch) != 1:
        raise InvalidInputError(f"a Rerank stage reranks one first stage, got {len(plan.prefetch)}; fuse them first")
    if plan.candidates < plan.limit:
        raise InvalidInputError(
            f"a Rerank stage returns {plan.limit} hits from {plan.candidates} candidates; rerank at least as many "
            "candidates as hits (raise the candidates, e.g. 'hybrid>rerank:50', or lower k)"
        )
    for name in plan.scorer.fields:
        if name not in schema or schema[name].kind is not EmbeddingKind.MULTIVECTOR:
            raise UnsupportedStrategyError(
                f"the reranker reads the stored tokens of multi-vector field {name!r}, which this collection "
                "does not hold; index the documents with a strategy that stores it (e.g. 'colbert')"
            )
