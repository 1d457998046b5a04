"""The search plan: what a query asks of a collection, in the shape of Qdrant's Query API.

A collection holds documents and, per document, one vector in each named field of its schema
(search/schema.py). A search is a plan, which every adapter maps onto what its engine does
natively:

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
    Rerank(prefetch, limit, scorer)                    the candidates of one stage scored again
                                                       client-side by `scorer` (a cross-encoder,
                                                       MaxSim over stored tokens), the root of
                                                       a plan only; every store runs it the same
                                                       way (VectorStore.search_many)

So "binary, then rescore with float32" is Rescore("dense_binary", "dense", q, 10, 4.0), which
Qdrant and Weaviate answer in one query on their quantized index, and which means the same as the
two stages VectorSearch("dense", q, 10, prefetch=(VectorSearch("dense_binary", q, 40),)) that
other stores run; hybrid search is a Fusion of a sparse and a dense stage. Intent is written in
the plan, never guessed from its shape. search/validation.py checks a plan against the schema and
the store's declared capabilities before any engine sees it; search/executor.py runs, client-side
and for sync and async engines alike, the stages an engine does not run natively.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ragembed.types import Embeddings, Hit


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


class CandidateScorer(Protocol):
    """What a Rerank stage scores its candidates with. `fields`: the multi-vector fields whose
    stored vectors it reads for each candidate (by the store, before `score` is called)."""

    @property
    def fields(self) -> tuple[str, ...]: ...

    def score(self, hits: Sequence[Hit], vectors: Mapping[str, Mapping[str, np.ndarray]]) -> list[Scored]:
        """One Scored per hit, in the order given: `vectors[field][hit.id]` holds the hit's stored
        vectors of each field in `fields`."""
        ...


@dataclass(frozen=True)
class Scored:
    """A candidate's rerank score, and the index of the passage that scored it where the scorer
    reads passages (None where it scores the document as a whole)."""

    score: float
    passage: int | None = None


@dataclass(frozen=True, eq=False)
class Rerank:
    """The first stage's top `prefetch.limit` candidates (with their documents) scored again by
    `scorer`, the best `limit` kept, ties by document id. No engine runs it: the store runs the
    first stage, reads the vectors the scorer names, and ranks here, so it is always the root of
    a plan."""

    prefetch: tuple[Plan, ...]
    limit: int
    scorer: CandidateScorer

    @property
    def candidates(self) -> int:
        return sum(stage.limit for stage in self.prefetch)


Plan = VectorSearch | Rescore | Fusion | KeywordSearch | Rerank
