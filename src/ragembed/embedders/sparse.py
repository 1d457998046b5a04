"""BM25 as sparse vectors.

Documents become term weights with BM25's term-frequency saturation and length normalisation;
queries become a count per query term. The inverse document frequency is left to the store
(Qdrant's `Modifier.IDF`, or the memory store's identical formula), so it always reflects what
the collection holds now. The dot product of the two vectors is then exactly Lucene's BM25 (in
its Lucene 8+ form without the constant (k1 + 1) factor, as bm25s's default "lucene" method):

    score(q, d) = sum_t idf(t) * tf(t,d) / (tf(t,d) + k1 * (1 - b + b * |d| / avgdl))

Tokenising (lower-casing, stop words, Snowball stemming) is bm25s's and PyStemmer's. Terms map to
indices by a stable CRC32 hash (as Qdrant's own BM25 does with a hash), so no vocabulary has to
be fitted or stored; collisions are rare (about one pair per 90,000 distinct terms) and only
merge two terms. The average document length is fitted on a collection's first corpus and
recorded in its manifest (`settings()`, fitted); `restored()` carries it to later sessions.
"""

from __future__ import annotations

import copy
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from ragembed.embedders.base import CacheOption, Embedder, Role
from ragembed.embedders.settings import Setting
from ragembed.errors import InvalidInputError, MissingDependencyError
from ragembed.types import EmbeddingKind, SparseEmbeddings, validate_texts


@lru_cache(maxsize=1 << 20)
def term_index(term: str) -> int:
    return zlib.crc32(term.encode("utf-8"))


class BM25Embedder(Embedder):
    """Sparse BM25 vectors (k1, b as in Lucene and bm25s; English stemming and stop words).

    Args:
        k1: term-frequency saturation.
        b: document-length normalisation.
        language: the Snowball stemmer's language (PyStemmer).
        stopwords: bm25s's stop-word list name ("en"), a list of words, or None for none.
        avgdl: the corpus' average document length, when known (else `fitted(texts)` gives a
            copy that learned it; a collection records it, so later documents score alike).
        passage_avgdl: the average length of the corpus' passages, for BM25 over passages
            (`fitted_to_passages`, `for_passages`): a passage is normalised against passages, as
            a document is against documents.
        cache: as DenseEmbedder's (off by default: BM25 is cheap to recompute).
        show_progress: a progress bar while embedding many texts.
    """

    kind = EmbeddingKind.SPARSE

    def __init__(
        self,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        language: str = "english",
        stopwords: str | list[str] | None = "en",
        avgdl: float | None = None,
        passage_avgdl: float | None = None,
        cache: CacheOption = False,
        show_progress: bool = False,
    ) -> None:
        # Tokenising is fast; caching BM25 vectors saves little, so it is off by default.
        super().__init__(cache=cache, show_progress=show_progress)
        try:
            import bm25s
            import Stemmer
        except ImportError as exc:
            raise MissingDependencyError.for_extra("bm25s / PyStemmer", "sparse") from exc
        if k1 < 0 or not 0 <= b <= 1:
            raise InvalidInputError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        try:
            self._stemmer = Stemmer.Stemmer(language) if language else None
        except KeyError as exc:
            raise InvalidInputError(
                f"no Snowball stemmer for language {language!r}; see Stemmer.algorithms(), or pass language=None"
            ) from exc
        self._tokenize_fn = bm25s.tokenize
        self.k1, self.b, self.language, self.stopwords = float(k1), float(b), language, stopwords
        self.avgdl = avgdl
        self.passage_avgdl = passage_avgdl

    def __repr__(self) -> str:
        return (
            f"BM25Embedder(k1={self.k1}, b={self.b}, language={self.language!r}, avgdl={self.avgdl}, "
            f"passage_avgdl={self.passage_avgdl})"
        )

    @property
    def dim(self) -> int:
        return 2**32

    def settings(self) -> tuple[Setting, ...]:
        # The tokeniser (language, stop words) decides which terms exist, so it must match the
        # collection's; the scoring statistics are the collection's own, carried over.
        return (
            Setting("language", self.language),
            Setting("stopwords", self.stopwords),
            Setting("k1", self.k1, fitted=True),
            Setting("b", self.b, fitted=True),
            Setting("avgdl", self.avgdl, fitted=True),
            # not a cache key: the twin that embeds passages (for_passages) carries it as its avgdl
            Setting("passage_avgdl", self.passage_avgdl, fitted=True, cached=False),
        )

    def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        tokens = self._tokenize_fn(
            list(texts), stopwords=self.stopwords, stemmer=self._stemmer, return_ids=False, show_progress=False
        )
        return [[t for t in doc if t] for doc in tokens]

    def fitted(self, texts: Sequence[str]) -> BM25Embedder:
        """A copy with the average document length of a corpus (this one is left as it is)."""
        return self._with_fitted({"avgdl": self._average_length(texts)})

    def fitted_to_passages(self, passages: Sequence[str]) -> BM25Embedder:
        """A copy with the average length of a corpus' passages (`passage_avgdl`); itself where it
        has one (given, or restored from a collection's record)."""
        if self.passage_avgdl is not None:
            return self
        return self._with_fitted({"passage_avgdl": self._average_length(passages)})

    def for_passages(self) -> BM25Embedder:
        """The twin that embeds passages: BM25 whose length normalisation is against passages."""
        if self.passage_avgdl is None:
            raise InvalidInputError(
                "BM25Embedder is not fitted to passages: embed them with embedder.fitted_to_passages(passage_texts), "
                "or give passage_avgdl="
            )
        return self._with_fitted({"avgdl": self.passage_avgdl})

    def _average_length(self, texts: Sequence[str]) -> float:
        lengths = [len(doc) for doc in self.tokenize(validate_texts(texts))]
        return max(float(np.mean(lengths)), 1.0)

    def _with_fitted(self, fitted: Mapping[str, Any]) -> BM25Embedder:
        """A copy scoring like the collection's documents: its avgdl, k1 and b."""
        twin = copy.copy(self)  # shares the stemmer and the cache; the statistics are its own
        for name, value in fitted.items():  # None: a statistic the record has not learned (passage_avgdl)
            setattr(twin, name, None if value is None else float(value))
        return twin

    def _encode(self, texts: list[str], role: Role) -> SparseEmbeddings:
        if role == "document" and self.avgdl is None:
            raise InvalidInputError(
                "BM25Embedder is not fitted: embed documents with embedder.fitted(corpus_texts), or give avgdl="
            )
        avgdl = self.avgdl or 1.0  # documents need avgdl (checked above); queries do not use it
        indices, values = [], []
        for tokens in self.tokenize(texts):
            counts: Counter[int] = Counter(term_index(t) for t in tokens)
            idx = np.fromiter(sorted(counts), dtype=np.uint32, count=len(counts))
            tf = np.array([counts[i] for i in idx.tolist()], dtype=np.float32)
            if role == "query":
                values.append(tf)
            else:
                norm = self.k1 * (1 - self.b + self.b * len(tokens) / avgdl)
                values.append(tf / (tf + norm))
            indices.append(idx)
        return SparseEmbeddings(tuple(indices), tuple(values))
