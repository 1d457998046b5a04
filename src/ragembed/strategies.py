"""Search strategies: which vector fields a collection needs, and how a query searches them.

A strategy is configuration (a small frozen dataclass, validated when built) with three jobs:
  fields()            the vector fields it stores, fitted on the first documents where needed
                      (int8 calibration)
  embedders           the embedders it encodes with, by name (`Using`), and their kinds
  plan()              the search plan (ragembed.search.plan) for one query; a field's vectors are
                      derived from the base embeddings by `derive()`

Base embeddings are computed once per embedder (full-dimension float32 dense, sparse,
multi-vector), embedders held by name; strategies only derive from them (truncate, encode), so
indexing several strategies into one collection encodes each text once. Fields with the same name
mean the same data in every strategy ("dense" is always the full float32 vector of the embedder
named "dense"), so strategies share them. A strategy uses the default embedder of each kind
("dense", "sparse", "multivector") unless told other names (`Using`); a field from another
embedder carries its name ("colbert__colbert_b"), and so does the strategy's ("colbert@colbert_b").

Names, as the CLI and `parse_strategy` take them:
  dense            exact float32 search
  int8             int8 search, rescored with float32        (int8:norescore to skip rescoring)
  binary           search of sign bits with the query's own values (asymmetric), rescored with
                   float32 (binary:norescore; binary:hamming reduces the query to bits too)
  matryoshka:64    search with the first 64 dimensions only
  funnel:64        candidates at 64 dimensions, rescored at full dimension
  bm25             sparse BM25 of the whole text
  bm25:passages    BM25 of each passage, a document scored by its best passage (in passages only)
  hybrid           BM25 + dense, reciprocal rank fusion
  colbert          ColBERT MaxSim over every document
  colbert+dense    dense first stage, ColBERT MaxSim rescoring
                   (either with :float16, :turbo8 or :turbo4: the token vectors kept as half
                   floats, or as Qdrant Edge's 8- or 4-bit TurboQuant codes; or with :int8 or
                   :binary: a quantized index of the tokens beside their float32 originals,
                   MaxSim on the codes, the best rescored with the originals; and a number of
                   first-stage candidates, 100 unless named: colbert+dense:turbo4:50)
  colbert+muvera   the same with a MUVERA first stage: fixed-size encodings of the ColBERT
                   tokens themselves (no dense model); a shape after it, k5p16r20 unless named
                   (colbert+muvera:k4p16r10:turbo4:50), see ragembed.muvera
  keyword          the engine's own BM25 over the stored text (Weaviate)
  keyword-hybrid   the engine's BM25 + dense, fused by the engine (Weaviate's hybrid; alpha 0.5,
                   or keyword-hybrid:0.7 for more weight on the vector side)
  <any>>rerank     any strategy's best candidates scored again by a cross-encoder (the Retriever's
                   reranker; `ragembed finetune reranker` trains one): hybrid>rerank, 10 unless
                   named (hybrid>rerank:20), or k where a search asks for more
  <any>>colbert    the same by ColBERT MaxSim over the candidates' stored tokens (hybrid>colbert:100)
  <any>>rerank+colbert  both, their rankings fused by reciprocal rank (hybrid>rerank+colbert:20)

`plan()` also receives the query text, which only the keyword strategies read.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

import numpy as np

from ragembed.embedders.matryoshka import truncate
from ragembed.errors import InvalidInputError, UnsupportedStrategyError
from ragembed.muvera import DEFAULT_SHAPE, SHAPE_LABEL, MuveraShape
from ragembed.quantization import Int8Calibration
from ragembed.search.capabilities import Capabilities
from ragembed.search.plan import CandidateScorer, Fusion, KeywordSearch, Plan, Rerank, Rescore, VectorSearch
from ragembed.search.schema import DEFAULT_EMBEDDER, Schema, VectorField, check_embedder_name
from ragembed.search.validation import NO_SPARSE_PASSAGES, check_fields_present, no_quantized_passages
from ragembed.similarity import normalize_rows
from ragembed.types import (
    Datatype,
    DenseEmbeddings,
    EmbeddingKind,
    Embeddings,
    MultiVectorEmbeddings,
    Precision,
    check_positive,
    narrow,
    parse_enum,
)

if TYPE_CHECKING:  # rerank.py loads sentence-transformers when a reranker is built, not on import
    from ragembed.rerank import CrossEncoderReranker

DENSE, SPARSE, MULTI = EmbeddingKind.DENSE, EmbeddingKind.SPARSE, EmbeddingKind.MULTIVECTOR
Base = Mapping[str, Embeddings]  # one Embeddings per embedder, by name
T = TypeVar("T")


@dataclass(frozen=True)
class Using:
    """Which embedder, by name, a strategy encodes each kind of vectors with (the Retriever holds
    embedders by name; these defaults are the ones it makes itself)."""

    dense: str = DEFAULT_EMBEDDER[DENSE]
    sparse: str = DEFAULT_EMBEDDER[SPARSE]
    multivector: str = DEFAULT_EMBEDDER[MULTI]

    def __post_init__(self) -> None:
        for kind in (DENSE, SPARSE, MULTI):
            object.__setattr__(self, kind.value, check_embedder_name(getattr(self, kind.value)))

    def of(self, kind: EmbeddingKind) -> str:
        return {DENSE: self.dense, SPARSE: self.sparse, MULTI: self.multivector}[kind]

    def field(self, name: str, kind: EmbeddingKind) -> str:
        """A field's name: as it is for the default embedder of its kind, else with the
        embedder's name after two underscores (so two models' fields never share a name)."""
        embedder = self.of(kind)
        return name if embedder == DEFAULT_EMBEDDER[kind] else f"{name}__{embedder}"

    def suffix(self, kinds: Sequence[EmbeddingKind]) -> str:
        """What a strategy's name gains: "@name" for another embedder of its first (main) kind,
        "@kind=name" for the others, comma-separated; "" with the defaults."""
        parts = [
            self.of(kind) if i == 0 else f"{kind.value}={self.of(kind)}"
            for i, kind in enumerate(kinds)
            if self.of(kind) != DEFAULT_EMBEDDER[kind]
        ]
        return "@" + ",".join(parts) if parts else ""


DEFAULTS = Using()


def derive(f: VectorField, base: Base, for_query: bool) -> Embeddings:
    """A field's vectors from the base embeddings of its embedder (`f.source`): Matryoshka fields
    truncate dense ones, MUVERA fields encode multi-vector ones (queries and documents
    differently), per-passage fields hold each document's passage vectors (a query: its one
    vector) at unit length. (Quantized fields take float32 too: the store quantizes, natively
    where it can.)"""
    if f.per_passage and f.kind is SPARSE:  # BM25 of each passage; a query's vector is of its whole text
        return base[f.source] if for_query else base[passage_embeddings(f.source)]
    if f.per_passage:
        given = base[f.source]
        if isinstance(given, DenseEmbeddings):  # queries: one vector each
            rows: Sequence[np.ndarray] = list(given.data[:, None, :])
        else:
            rows = narrow(given, MultiVectorEmbeddings).vectors
        return MultiVectorEmbeddings(tuple(normalize_rows(np.asarray(v)[:, : f.dim]) for v in rows))
    if f.muvera is not None:
        tokens = narrow(base[f.source], MultiVectorEmbeddings)
        return MuveraShape.from_dict(f.muvera).encode(tokens, query=for_query)
    if f.kind is not DENSE:
        return base[f.source]
    dense = narrow(base[f.source], DenseEmbeddings)
    return dense if f.dim >= dense.dim else truncate(dense, f.dim)


def passage_embeddings(embedder: str) -> str:
    """Where documents' base embeddings hold an embedder's embeddings of their passages, for an
    embedder that embeds whole texts too (BM25: the Retriever adds them for a per-passage sparse
    field). No embedder name holds a '/'."""
    return f"{embedder}/passages"


class Strategy(ABC):
    # The kinds of embeddings it encodes with, its main kind first (the one "@name" renames).
    kinds: ClassVar[tuple[EmbeddingKind, ...]]
    needs_keyword: ClassVar[bool] = False  # searches text with the engine's BM25 (KeywordSearch)
    needs_passages: ClassVar[bool] = False  # searches only documents split into passages
    using: Using

    @property
    def embedders(self) -> dict[str, EmbeddingKind]:
        """The embedders it encodes with, by name, and the kind of vectors each makes."""
        return {self.using.of(kind): kind for kind in self.kinds}

    @property
    def needs(self) -> frozenset[str]:
        """The names of the embedders it encodes with."""
        return frozenset(self.embedders)

    @property
    def name(self) -> str:
        return self.base_name + self.using.suffix(self.kinds)

    @property
    @abstractmethod
    def base_name(self) -> str:
        """The name with the default embedders ("dense", "colbert+dense:turbo4:50", ...)."""

    def using_embedders(self, using: Using) -> Strategy:
        """The same strategy encoding with the embedders `using` names."""
        strategy: Strategy = replace(cast(Any, self), using=using)  # every strategy is a dataclass
        return strategy

    @abstractmethod
    def fields(self, docs: Base) -> list[VectorField]: ...

    @abstractmethod
    def plan(self, query: Base, schema: Schema, k: int, text: str = "") -> Plan: ...

    def passage_refusal(self, capabilities: Capabilities) -> str | None:
        """Why it cannot search documents split into passages on a store with these capabilities
        (None: it can). A new collection is split by default unless a strategy says why not."""
        return None

    def fields_in(self, schema: Schema) -> list[VectorField]:
        """This strategy's fields as the collection stores them (with their calibration)."""
        check_fields_present(self.name, self.field_names, schema)
        return [schema[n] for n in self.field_names]

    @property
    @abstractmethod
    def field_names(self) -> list[str]: ...

    @property
    def searched_fields(self) -> list[str]:
        """The fields searched in memory; the others only rescore candidates (on disk in Qdrant)."""
        return self.field_names

    def _stage(self, f: VectorField, query: Base, limit: int, prefetch: tuple[VectorSearch, ...] = ()) -> VectorSearch:
        return VectorSearch(f.name, derive(f, query, for_query=True), limit, prefetch)

    def _dense_field(self, docs: Base) -> VectorField:
        """The full float32 vectors of the dense embedder it uses: one per document, or one per
        passage where the Retriever split the documents (its embeddings are then per document a
        multi-vector of passage vectors)."""
        embedder = self.using.dense
        name = self.using.field("dense", DENSE)
        given = docs[embedder]
        if isinstance(given, MultiVectorEmbeddings):
            return VectorField(name, MULTI, given.dim, distance="dot", embedder=embedder, per_passage=True)
        return VectorField(name, DENSE, narrow(docs[embedder], DenseEmbeddings).dim, embedder=embedder)


@dataclass(frozen=True)
class Dense(Strategy):
    """Exact float32 search (cosine)."""

    using: Using = DEFAULTS
    kinds: ClassVar = (DENSE,)
    base_name: ClassVar[str] = "dense"

    @property
    def field_names(self) -> list[str]:
        return [self.using.field("dense", DENSE)]

    def fields(self, docs: Base) -> list[VectorField]:
        return [self._dense_field(docs)]

    def plan(self, query: Base, schema: Schema, k: int, text: str = "") -> Plan:
        (dense,) = self.fields_in(schema)
        return self._stage(dense, query, k)


@dataclass(frozen=True)
class Quantized(Strategy):
    """int8 or binary search over `oversampling * k` candidates, rescored with float32 vectors.

    Args:
        precision: "int8" or "binary".
        oversampling: candidates rescored per result (default 4 for int8, 10 for binary; at
            millions of documents binary needs about 30 for recall@10 0.98: docs/benchmarks.md).
        rescore: rescore the candidates with the float32 vectors (False: the quantized scores).
        asymmetric: binary only, see below.

    asymmetric (binary only, the default): documents are stored as sign bits, the query keeps its
    values (field "dense_binary_asym"); asymmetric=False reduces the query to bits as well and
    ranks by Hamming distance (field "dense_binary", what "binary" stored before asymmetric
    search became the default).
    """

    precision: Precision = Precision.BINARY
    oversampling: float | None = None
    rescore: bool = True
    asymmetric: bool | None = None
    using: Using = DEFAULTS
    kinds: ClassVar = (DENSE,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", parse_enum(Precision, self.precision, "Quantized precision"))
        if self.precision is Precision.FLOAT32:
            raise InvalidInputError("Quantized needs precision 'int8' or 'binary'; use Dense for float32")
        if self.oversampling is None:
            object.__setattr__(self, "oversampling", 10.0 if self.precision is Precision.BINARY else 4.0)
        check_positive("oversampling", self.oversampling)
        if self.asymmetric and self.precision is not Precision.BINARY:
            raise InvalidInputError("asymmetric applies to binary quantization only (int8 queries are int8)")
        object.__setattr__(self, "asymmetric", self.precision is Precision.BINARY and self.asymmetric is not False)

    @property
    def base_name(self) -> str:
        hamming = self.precision is Precision.BINARY and not self.asymmetric
        return self.precision.value + (":hamming" if hamming else "") + ("" if self.rescore else ":norescore")

    @property
    def field_names(self) -> list[str]:
        quantized = f"dense_{self.precision.value}" + ("_asym" if self.asymmetric else "")
        return [self.using.field("dense", DENSE), self.using.field(quantized, DENSE)]

    @property
    def searched_fields(self) -> list[str]:
        return self.field_names[1:]

    def fields_in(self, schema: Schema) -> list[VectorField]:
        hamming_field = self.using.field("dense_binary", DENSE)  # Quantized(asymmetric=False)'s field
        if self.asymmetric and self.field_names[1] not in schema and hamming_field in schema:
            raise UnsupportedStrategyError(
                "this collection holds Hamming binary codes (field 'dense_binary', indexed before "
                "binary search became asymmetric); search it with 'binary:hamming' "
                "(Quantized('binary', asymmetric=False)), or index the documents with 'binary' again"
            )
        return super().fields_in(schema)

    def fields(self, docs: Base) -> list[VectorField]:
        full = self._dense_field(docs)
        if self.precision is Precision.BINARY and full.dim % 8:
            raise UnsupportedStrategyError(
                f"binary quantization needs a dimension divisible by 8; this model has {full.dim}"
            )
        if full.per_passage and self.precision is Precision.BINARY and not self.asymmetric:
            raise UnsupportedStrategyError(HAMMING_OVER_PASSAGES)
        calibration = None
        if self.precision is Precision.INT8:  # one range per dimension, over every vector (passage) given
            vectors = derive(full, docs, for_query=False)
            rows = (
                np.concatenate(vectors.vectors)
                if isinstance(vectors, MultiVectorEmbeddings)
                else narrow(vectors, DenseEmbeddings).data
            )
            calibration = Int8Calibration.fit(DenseEmbeddings(rows)).to_dict()
        quantized = VectorField(
            self.field_names[1],
            full.kind,
            full.dim,
            self.precision,
            distance="dot",
            calibration=calibration,
            asymmetric=bool(self.asymmetric),
            embedder=full.source,
            per_passage=full.per_passage,
        )
        return [full, quantized]

    def passage_refusal(self, capabilities: Capabilities) -> str | None:
        if self.precision is Precision.BINARY and not self.asymmetric:
            return HAMMING_OVER_PASSAGES
        return None if capabilities.quantized_multivectors else no_quantized_passages(self.precision)

    def plan(self, query: Base, schema: Schema, k: int, text: str = "") -> Plan:
        full, quantized = self.fields_in(schema)
        if not self.rescore:
            return self._stage(quantized, query, k)
        assert self.oversampling is not None  # __post_init__ sets the default
        original = quantized if quantized.per_passage else full  # a quantized multi-vector keeps its own
        return Rescore(quantized.name, original.name, derive(full, query, for_query=True), k, self.oversampling)


@dataclass(frozen=True)
class Matryoshka(Strategy):
    """Search with the first `dim` dimensions; with rescore (the funnel), rescore the best
    max(candidates, oversampling * k) of them at full dimension."""

    dim: int = 64
    rescore: bool = False
    candidates: int = 100
    oversampling: float = 4.0
    using: Using = DEFAULTS
    kinds: ClassVar = (DENSE,)

    def __post_init__(self) -> None:
        check_positive("Matryoshka dim", self.dim, integer=True)
        check_positive("candidates", self.candidates, integer=True)
        check_positive("oversampling", self.oversampling)

    @property
    def base_name(self) -> str:
        return f"{'funnel' if self.rescore else 'matryoshka'}:{self.dim}"

    @property
    def field_names(self) -> list[str]:
        return [self.using.field("dense", DENSE), self.using.field(f"dense_d{self.dim}", DENSE)]

    @property
    def searched_fields(self) -> list[str]:
        return self.field_names[1:]

    def fields(self, docs: Base) -> list[VectorField]:
        full = self._dense_field(docs)
        if self.dim > full.dim:
            raise UnsupportedStrategyError(
                f"Matryoshka dimension {self.dim} exceeds the model's {full.dim} dimensions; pick <= {full.dim}"
            )
        small = VectorField(
            self.field_names[1],
            full.kind,
            self.dim,
            distance="dot" if full.per_passage else "cosine",
            embedder=full.source,
            per_passage=full.per_passage,
        )
        return [full, small]

    def plan(self, query: Base, schema: Schema, k: int, text: str = "") -> Plan:
        full, small = self.fields_in(schema)
        if not self.rescore:
            return self._stage(small, query, k)
        pool = max(self.candidates, round(k * self.oversampling))
        return self._stage(full, query, k, (self._stage(small, query, pool),))


@dataclass(frozen=True)
class BM25(Strategy):
    """Sparse BM25 (IDF applied by the store over the collection)."""

    using: Using = DEFAULTS
    kinds: ClassVar = (SPARSE,)
    base_name: ClassVar[str] = "bm25"

    @property
    def field_names(self) -> list[str]:
        return [self.using.field("bm25", SPARSE)]

    def fields(self, docs: Base) -> list[VectorField]:
        return [VectorField(self.field_names[0], SPARSE, 0, distance="dot", idf=True, embedder=self.using.sparse)]

    def plan(self, query: Base, schema: Schema, k: int, text: str = "") -> Plan:
        (sparse,) = self.fields_in(schema)
        return self._stage(sparse, query, k)


@dataclass(frozen=True)
class PassageBM25(Strategy):
    """BM25 of each passage, a document scored by its best passage ("bm25:passages"): the
    passages are the collection's (its dense model's split, which also names each hit's passage,
    so the dense passage vectors are stored too), normalised against the average passage length,
    IDF counted over passages. On long documents it beats BM25 of the whole text (+0.034-0.041
    nDCG@10 on SciFact-long with passages of the window) and on short ones it loses (docs/
    benchmarks.md, "BM25 over passages")."""

    using: Using = DEFAULTS
    kinds: ClassVar = (SPARSE, DENSE)
    needs_passages: ClassVar[bool] = True
    base_name: ClassVar[str] = "bm25:passages"

    @property
    def field_names(self) -> list[str]:
        return [self.using.field("bm25_passages", SPARSE), *Dense(self.using).field_names]

    @property
    def searched_fields(self) -> list[str]:
        return self.field_names[:1]

    def fields(self, docs: Base) -> list[VectorField]:
        dense = self._dense_field(docs)
        if not dense.per_passage:
            raise UnsupportedStrategyError(BM25_PASSAGES_OVER_WHOLE)
        sparse = VectorField(
            self.field_names[0], SPARSE, 0, distance="dot", idf=True, embedder=self.using.sparse, per_passage=True
        )
        return [sparse, dense]

    def passage_refusal(self, capabilities: Capabilities) -> str | None:
        return None if capabilities.sparse_passages else NO_SPARSE_PASSAGES

    def plan(self, query: Base, schema: Schema, k: int, text: str = "") -> Plan:
        sparse, _ = self.fields_in(schema)
        return self._stage(sparse, query, k)


@dataclass(frozen=True)
class Hybrid(Strategy):
    """BM25 and dense, each retrieving `candidates`, fused by reciprocal rank (RRF, k=rrf_k)."""

    candidates: int = 100
    rrf_k: int = 60
    using: Using = DEFAULTS
    kinds: ClassVar = (DENSE, SPARSE)
    base_name: ClassVar[str] = "hybrid"

    @property
    def field_names(self) -> list[str]:
        return [*Dense(self.using).field_names, *BM25(self.using).field_names]

    def __post_init__(self) -> None:
        check_positive("candidates", self.candidates, integer=True)
        if isinstance(self.rrf_k, bool) or not isinstance(self.rrf_k, int) or self.rrf_k < 0:
            raise InvalidInputError(f"rrf_k (the RRF constant) must be a whole number >= 0, got {self.rrf_k!r}")

    def fields(self, docs: Base) -> list[VectorField]:
        return Dense(self.using).fields(docs) + BM25(self.using).fields(docs)

    def plan(self, query: Base, schema: Schema, k: int, text: str = "") -> Plan:
        dense, sparse = self.fields_in(schema)
        limit = max(k, self.candidates)
        return Fusion((self._stage(sparse, query, limit), self._stage(dense, query, limit)), k, rrf_k=self.rrf_k)


FIRST_STAGES = {None: "colbert", "dense": "colbert+dense", "muvera": "colbert+muvera"}


@dataclass(frozen=True)
class ColBERT(Strategy):
    """MaxSim late interaction, over every document or over a first stage's top `candidates`.

    first_stage: None (MaxSim over every document: exact, slow), "dense" (the dense model's
    single vector finds the candidates) or "muvera" (a MUVERA encoding of the same ColBERT tokens
    finds them: one model, no dense embedder; `muvera` its shape, see ragembed.muvera).
    datatype: how the store keeps the token vectors (types.Datatype): float32; float16 (half the
    bytes, the same ranking to 3-4 digits); turbo8 / turbo4 (Qdrant Edge's TurboQuant: a quarter
    or an eighth of the bytes, lossy; docs/benchmarks.md section 4 measures each). Each datatype
    is its own field ("colbert", "colbert_float16", ...), so one collection can hold several.
    precision: "int8" or "binary" keeps a quantized index of the tokens beside their float32
    originals (Qdrant: the codes in RAM, the originals on disk; Weaviate: RQ / BQ): MaxSim on
    the codes ranks the candidates, and the best `oversampling` x k of them are rescored with
    the originals (default 4 for int8, 10 for binary). It replaces no tokens, so it excludes a
    datatype other than float32. Binary keeps the query tokens' own values (asymmetric).
    """

    first_stage: str | None = None
    candidates: int = 100
    datatype: Datatype = Datatype.FLOAT32
    muvera: MuveraShape = DEFAULT_SHAPE
    precision: Precision = Precision.FLOAT32
    oversampling: float | None = None
    using: Using = DEFAULTS

    def __post_init__(self) -> None:
        if self.first_stage not in FIRST_STAGES:
            raise InvalidInputError(f"ColBERT first_stage must be None, 'dense' or 'muvera', got {self.first_stage!r}")
        check_positive("candidates", self.candidates, integer=True)
        object.__setattr__(self, "datatype", parse_enum(Datatype, self.datatype, "ColBERT datatype"))
        object.__setattr__(self, "precision", parse_enum(Precision, self.precision, "ColBERT precision"))
        if not isinstance(self.muvera, MuveraShape):
            raise InvalidInputError(f"ColBERT muvera must be a MuveraShape, got {type(self.muvera).__name__}")
        if self.precision is not Precision.FLOAT32 and self.datatype is not Datatype.FLOAT32:
            raise InvalidInputError(
                f"ColBERT precision {self.precision.value!r} keeps float32 token vectors beside their codes, "
                f"and datatype {self.datatype.value!r} replaces them: choose one"
            )
        if self.precision is Precision.FLOAT32:
            if self.oversampling is not None:
                raise InvalidInputError(
                    "ColBERT oversampling applies to a quantized index (precision 'int8' or 'binary'); "
                    "float32 tokens are scored exactly, so leave it out"
                )
            return
        if self.oversampling is None:
            object.__setattr__(self, "oversampling", 10.0 if self.precision is Precision.BINARY else 4.0)
        check_positive("oversampling", self.oversampling)

    @property
    def kinds(self) -> tuple[EmbeddingKind, ...]:  # type: ignore[override]
        return (MULTI, DENSE) if self.first_stage == "dense" else (MULTI,)

    @property
    def base_name(self) -> str:
        parts = [FIRST_STAGES[self.first_stage]]
        if self.first_stage == "muvera" and self.muvera != DEFAULT_SHAPE:
            parts.append(self.muvera.label)
        if self.datatype is not Datatype.FLOAT32:
            parts.append(self.datatype.value)
        if self.precision is not Precision.FLOAT32:
            parts.append(self.precision.value)
        if self.first_stage and self.candidates != ColBERT.candidates:
            parts.append(str(self.candidates))
        return ":".join(parts)

    @property
    def _tokens_field(self) -> str:
        kept = self.precision.value if self.precision is not Precision.FLOAT32 else self.datatype.value
        return self.using.field("colbert" if kept == "float32" else f"colbert_{kept}", MULTI)

    @property
    def _first_stage_field(self) -> str:
        if self.first_stage == "dense":
            return self.using.field("dense", DENSE)
        return self.using.field(f"muvera_{self.muvera.label}", MULTI)

    @property
    def field_names(self) -> list[str]:
        return [self._first_stage_field, self._tokens_field] if self.first_stage else [self._tokens_field]

    def fields(self, docs: Base) -> list[VectorField]:
        tokens = narrow(docs[self.using.multivector], MultiVectorEmbeddings)
        calibration = None
        if self.precision is Precision.INT8:  # one range per dimension, over every token of the first documents
            calibration = Int8Calibration.fit(DenseEmbeddings(np.concatenate(tokens.vectors))).to_dict()
        colbert = VectorField(
            self._tokens_field,
            MULTI,
            tokens.dim,
            self.precision,
            distance="dot",
            calibration=calibration,
            asymmetric=self.precision is Precision.BINARY,
            datatype=self.datatype,
            embedder=self.using.multivector,
        )
        if self.first_stage == "dense":
            return [self._dense_field(docs), colbert]
        if self.first_stage == "muvera":
            self.muvera.check_tokens(tokens.dim)
            fde = VectorField(
                self._first_stage_field,
                DENSE,
                self.muvera.dim,
                distance="dot",
                muvera=self.muvera.to_dict(),
                embedder=self.using.multivector,
            )
            return [fde, colbert]
        return [colbert]

    def fields_in(self, schema: Schema) -> list[VectorField]:
        fields = super().fields_in(schema)
        if self.first_stage == "muvera" and fields[0].muvera != self.muvera.to_dict():
            raise UnsupportedStrategyError(
                f"field {fields[0].name!r} holds MUVERA encodings {fields[0].muvera}, not the "
                f"{self.muvera.to_dict()} strategy {self.name!r} encodes queries with; index the "
                "documents with this strategy into another collection"
            )
        return fields

    def plan(self, query: Base, schema: Schema, k: int, text: str = "") -> Plan:
        *first, colbert = self.fields_in(schema)
        prefetch = tuple(self._stage(f, query, max(k, self.candidates)) for f in first)
        if self.precision is Precision.FLOAT32:
            return self._stage(colbert, query, k, prefetch)
        assert self.oversampling is not None  # __post_init__ sets the default
        tokens = derive(colbert, query, for_query=True)
        return Rescore(colbert.name, colbert.name, tokens, k, self.oversampling, prefetch)


@dataclass(frozen=True)
class Keyword(Strategy):
    """The engine's own BM25 over the stored document text (no vector field; Weaviate)."""

    using: Using = DEFAULTS
    kinds: ClassVar = ()
    needs_keyword: ClassVar[bool] = True
    base_name: ClassVar[str] = "keyword"
    field_names: ClassVar[list[str]] = []

    def fields(self, docs: Base) -> list[VectorField]:
        return []

    def plan(self, query: Base, schema: Schema, k: int, text: str = "") -> Plan:
        return KeywordSearch(text, k)


@dataclass(frozen=True)
class KeywordHybrid(Strategy):
    """The engine's BM25 and dense search, fused by the engine (Weaviate's hybrid query, ranked
    fusion). alpha weighs the dense side: 0 is keyword only, 1 dense only."""

    alpha: float = 0.5
    using: Using = DEFAULTS
    kinds: ClassVar = (DENSE,)
    needs_keyword: ClassVar[bool] = True

    @property
    def field_names(self) -> list[str]:
        return Dense(self.using).field_names

    def __post_init__(self) -> None:
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not 0 <= self.alpha <= 1:
            raise InvalidInputError(f"keyword-hybrid alpha must be a number in [0, 1], got {self.alpha!r}")

    @property
    def base_name(self) -> str:
        return "keyword-hybrid" if self.alpha == 0.5 else f"keyword-hybrid:{self.alpha:g}"

    def fields(self, docs: Base) -> list[VectorField]:
        return [_whole(f) for f in Dense(self.using).fields(docs)]

    def passage_refusal(self, capabilities: Capabilities) -> str | None:
        return KEYWORD_HYBRID_OVER_PASSAGES

    def plan(self, query: Base, schema: Schema, k: int, text: str = "") -> Plan:
        dense = _whole(self.fields_in(schema)[0])
        return Fusion((KeywordSearch(text, k), self._stage(dense, query, k)), k, weights=(1 - self.alpha, self.alpha))


RERANKED_BY = ("rerank", "colbert", "rerank+colbert")  # the scorers, alone or fused by RRF


@dataclass(frozen=True)
class Reranked(Strategy):
    """`first`'s best `candidates` documents (k where a search asks for more) scored again
    client-side (a Rerank plan node): by a cross-encoder ("rerank", `reranker`), or by ColBERT
    MaxSim over their stored token vectors ("colbert": the collection stores them, as the
    'colbert' strategies do), or both, their rankings of the candidates fused by reciprocal rank
    ("rerank+colbert"). Named "<first>><by>[:candidates]": "hybrid>rerank:20"."""

    first: Strategy = field(default_factory=lambda: Hybrid())
    by: str = "rerank"
    # The smallest count within 0.005 nDCG@10 of the best on SciFact (docs/finetune.md, "Reranker").
    candidates: int = 10
    reranker: CrossEncoderReranker | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.first, Strategy) or isinstance(self.first, Reranked):
            raise InvalidInputError(
                f"a reranked strategy's first stage is one strategy that is not reranked itself, got {self.first!r}"
            )
        if self.by not in RERANKED_BY:
            raise InvalidInputError(f"rerank by one of {', '.join(RERANKED_BY)}, got {self.by!r}")
        check_positive("rerank candidates", self.candidates, integer=True)

    @property
    def using(self) -> Using:  # type: ignore[override]
        return self.first.using

    def using_embedders(self, using: Using) -> Strategy:
        return replace(self, first=self.first.using_embedders(using))

    @property
    def kinds(self) -> tuple[EmbeddingKind, ...]:  # type: ignore[override]
        extra = (MULTI,) if self.by_colbert and MULTI not in self.first.kinds else ()
        return (*self.first.kinds, *extra)

    @property
    def needs_keyword(self) -> bool:  # type: ignore[override]
        return self.first.needs_keyword

    @property
    def needs_passages(self) -> bool:  # type: ignore[override]
        return self.first.needs_passages

    @property
    def by_colbert(self) -> bool:
        """Scores by ColBERT MaxSim (alone or fused): the collection stores ColBERT tokens."""
        return "colbert" in self.by.split("+")

    @property
    def by_cross_encoder(self) -> bool:
        """Scores by a cross-encoder (alone or fused): the Retriever gives it `reranker`."""
        return "rerank" in self.by.split("+")

    @property
    def label(self) -> str:
        """What follows the first stage's name: ">rerank", ">colbert:100"."""
        return f">{self.by}" + (f":{self.candidates}" if self.candidates != Reranked.candidates else "")

    @property
    def name(self) -> str:
        return self.first.name + self.label

    @property
    def base_name(self) -> str:
        return self.first.base_name + self.label

    @property
    def _tokens(self) -> ColBERT:
        return ColBERT(using=self.using)

    @property
    def field_names(self) -> list[str]:
        extra = self._tokens.field_names if self.by_colbert else []
        return list(dict.fromkeys([*self.first.field_names, *extra]))

    @property
    def searched_fields(self) -> list[str]:
        return self.first.searched_fields

    def fields(self, docs: Base) -> list[VectorField]:
        fields = {f.name: f for f in self.first.fields(docs)}
        for f in self._tokens.fields(docs) if self.by_colbert else []:
            fields.setdefault(f.name, f)
        return list(fields.values())

    def fields_in(self, schema: Schema) -> list[VectorField]:
        self.first.fields_in(schema)
        return super().fields_in(schema)

    def passage_refusal(self, capabilities: Capabilities) -> str | None:
        return self.first.passage_refusal(capabilities)

    def plan(self, query: Base, schema: Schema, k: int, text: str = "") -> Plan:
        first = self.first.plan(query, schema, max(k, self.candidates), text)  # each checks its own fields
        return Rerank((first,), k, self._scorer(query, schema, text))

    def _scorer(self, query: Base, schema: Schema, text: str) -> CandidateScorer:
        from ragembed.rerank import CrossEncoderScorer, FusedScorer, MaxSimScorer

        scorers: list[CandidateScorer] = []
        if self.by_cross_encoder:
            if self.reranker is None:
                raise UnsupportedStrategyError(NO_RERANKER.format(name=self.name))
            scorers.append(CrossEncoderScorer(self.reranker, text))
        if self.by_colbert:
            (tokens_field,) = self._tokens.fields_in(schema)
            tokens = narrow(derive(tokens_field, query, for_query=True), MultiVectorEmbeddings)
            scorers.append(MaxSimScorer(tokens_field.name, np.asarray(tokens.vectors[0], dtype=np.float32)))
        return scorers[0] if len(scorers) == 1 else FusedScorer(tuple(scorers))


NO_RERANKER = (
    "strategy {name!r} reranks with a cross-encoder, and none was given: Retriever(..., reranker=PATH) "
    "(CLI: --reranker PATH); train one with `ragembed finetune reranker DATASET --output DIR`, or rerank "
    "by ColBERT MaxSim over stored tokens instead (>colbert)"
)


def _whole(f: VectorField) -> VectorField:
    """`f`, refused if it holds passage vectors (keyword-hybrid's engine fuses one vector a document)."""
    if f.per_passage:
        raise UnsupportedStrategyError(KEYWORD_HYBRID_OVER_PASSAGES)
    return f


KEYWORD_HYBRID_OVER_PASSAGES = (
    "keyword-hybrid fuses the engine's BM25 with one vector per document, and these documents are split into "
    "passages; use 'hybrid' (BM25 fused with the best passage), or index whole documents (CLI: --no-passages)"
)
HAMMING_OVER_PASSAGES = (
    "binary:hamming keeps one vector per document; passage vectors are searched with the query's own values "
    "against their binary codes: use 'binary', or index whole documents (CLI: --no-passages)"
)

BM25_PASSAGES_OVER_WHOLE = (
    "bm25:passages scores a document by its best passage, and these documents are whole (not split into "
    "passages); index in passages (leave passages=False / --no-passages out), or use 'bm25'"
)


STRATEGY_NAMES = [
    "dense",
    "int8",
    "binary[:hamming]",
    "matryoshka:<dim>",
    "funnel:<dim>",
    "bm25[:passages]",
    "hybrid",
    "colbert[:float16|turbo8|turbo4|int8|binary]",
    "colbert+dense[:float16|turbo8|turbo4|int8|binary][:candidates]",
    "colbert+muvera[:k<k_sim>p<dim_proj>r<r_reps>][:float16|turbo8|turbo4|int8|binary][:candidates]",
    "keyword",
    "keyword-hybrid[:alpha]",
    "<strategy>>rerank[:candidates]",
    "<strategy>>colbert[:candidates]",
    "<strategy>>rerank+colbert[:candidates]",
]


def parse_strategy(spec: str | Strategy) -> Strategy:
    """A strategy from its name ("binary", "funnel:64", ...), or the strategy itself. After an "@",
    the embedders it uses other than the defaults: "colbert@colbert_b" (its main kind's embedder),
    "hybrid@sparse=bm25_fr" or "colbert+dense@colbert_b,dense=e5" (by kind)."""
    if isinstance(spec, Strategy):
        return spec
    if not isinstance(spec, str):
        raise InvalidInputError(f"a strategy is a name or a Strategy, got {type(spec).__name__}")
    first, gt, second = spec.partition(">")
    if gt:
        return _parse_reranked(spec, parse_strategy(first), second)
    base, at, embedders = spec.partition("@")
    strategy = _parse_base(base)
    return _named(spec, lambda: strategy.using_embedders(_using(spec, strategy, embedders))) if at else strategy


def _parse_reranked(spec: str, first: Strategy, second: str) -> Reranked:
    """A reranked strategy from what follows its first stage's name: "rerank" or "colbert",
    then a number of candidates after a colon."""
    by, _, count = second.strip().lower().partition(":")
    if by not in RERANKED_BY or (count and not count.isdigit()):
        raise UnsupportedStrategyError(
            f"strategy {spec!r}: after '>' write rerank[:candidates] (a cross-encoder), colbert[:candidates] "
            "(ColBERT MaxSim over stored tokens) or rerank+colbert[:candidates] (both, fused), e.g. hybrid>rerank:20"
        )
    return _named(spec, lambda: Reranked(first, by, int(count) if count else Reranked.candidates))


def _using(spec: str, strategy: Strategy, embedders: str) -> Using:
    """The Using of a strategy name's "@..." part: names for its main kind, or kind=name pairs."""
    chosen: dict[str, str] = {}
    for part in embedders.split(","):
        kind_name, eq, name = part.strip().rpartition("=")
        kinds = {k.value: k for k in strategy.kinds}
        kind = kinds.get(kind_name) if eq else (strategy.kinds[0] if strategy.kinds else None)
        if kind is None or kind.value in chosen:
            uses = ", ".join(k.value for k in strategy.kinds) or "no embedder"
            raise UnsupportedStrategyError(
                f"strategy {spec!r}: {part.strip()!r} is not understood; after '@' name the embedder of its "
                f"main kind, or kind=name for one of the kinds it uses ({uses}), comma-separated"
            )
        chosen[kind.value] = name
    return Using(**chosen)


def _parse_base(spec: str) -> Strategy:
    """A strategy with the default embedders from its name."""
    name, _, arg = spec.strip().lower().partition(":")
    simple: dict[str, type[Strategy]] = {
        "dense": Dense,
        "bm25": BM25,
        "hybrid": Hybrid,
        "keyword": Keyword,
        "keyword-hybrid": KeywordHybrid,
    }
    if name in simple and not arg:
        return simple[name]()
    if name == "bm25" and arg == "passages":
        return PassageBM25()
    if name in FIRST_STAGES.values():
        return _parse_colbert(spec, name, arg)
    if name == "int8" and arg in ("", "norescore"):
        return Quantized(Precision.INT8, rescore=not arg)
    if name == "binary" and arg in ("", "norescore", "hamming", "hamming:norescore"):
        return Quantized(Precision.BINARY, rescore="norescore" not in arg, asymmetric="hamming" not in arg)
    if name == "keyword-hybrid" and re.fullmatch(r"\d+(\.\d*)?|\.\d+", arg):
        return KeywordHybrid(float(arg))
    if name in ("matryoshka", "funnel") and arg.isdigit():
        return Matryoshka(int(arg), rescore=name == "funnel")
    if name in ("matryoshka", "funnel"):
        raise UnsupportedStrategyError(f"strategy {spec!r}: {name} takes a whole number of dimensions, e.g. {name}:64")
    raise UnsupportedStrategyError(f"unknown strategy {spec!r}; choose one of {', '.join(STRATEGY_NAMES)}")


def _parse_colbert(spec: str, name: str, arg: str) -> ColBERT:
    """colbert, colbert+dense or colbert+muvera, each part after a colon one of: how the tokens
    are kept (a datatype, or a precision: a quantized index beside float32 tokens), a number of
    first-stage candidates, a MUVERA shape (colbert+muvera:k4p16r10:turbo4:50)."""
    first_stage = next(stage for stage, spelled in FIRST_STAGES.items() if spelled == name)
    kept_as = [d.value for d in Datatype if d is not Datatype.FLOAT32] + [
        p.value for p in Precision if p is not Precision.FLOAT32
    ]
    kept: str | None = None
    candidates: int | None = None
    shape: MuveraShape | None = None
    for part in arg.split(":") if arg else []:
        if part in kept_as and kept is not None:
            raise UnsupportedStrategyError(
                f"strategy {spec!r}: the token vectors are kept one way, {kept!r} or {part!r}; name one"
            )
        if part in kept_as:
            kept = part
        elif part.isdigit() and first_stage and candidates is None:
            candidates = int(part)
        elif first_stage == "muvera" and SHAPE_LABEL.fullmatch(part) and shape is None:
            shape = _named(spec, lambda: MuveraShape.from_label(part))
        else:
            one = f"one of {', '.join(kept_as)} (the token vectors as a datatype, or a quantized index beside them)"
            forms = {
                None: f"colbert or colbert:<kept>, <kept> {one}; colbert searches every document, so it takes "
                "no candidate count (colbert+dense:50 does)",
                "dense": f"colbert+dense[:<kept>][:<candidates>], <kept> {one}, e.g. colbert+dense:turbo4:50",
                "muvera": f"colbert+muvera[:k<k_sim>p<dim_proj>r<r_reps>][:<kept>][:<candidates>], <kept> {one}, "
                "e.g. colbert+muvera:k4p16r10:turbo4:50",
            }[first_stage]
            raise UnsupportedStrategyError(f"strategy {spec!r}: {part!r} is not understood; write {forms}")
    datatype = next((d for d in Datatype if d.value == kept), Datatype.FLOAT32)
    precision = next((p for p in Precision if p.value == kept), Precision.FLOAT32)
    return _named(
        spec,
        lambda: ColBERT(
            first_stage=first_stage,
            candidates=ColBERT.candidates if candidates is None else candidates,
            datatype=datatype,
            muvera=shape or DEFAULT_SHAPE,
            precision=precision,
        ),
    )


def _named(spec: str, make: Callable[[], T]) -> T:
    """make(), its bad-value errors prefixed with the strategy name they came from."""
    try:
        return make()
    except InvalidInputError as exc:
        raise InvalidInputError(f"strategy {spec!r}: {exc}") from exc
