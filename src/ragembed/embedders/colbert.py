"""ColBERT multi-vector embeddings (late interaction) through PyLate.

Every token gets its own small vector; a document scores by MaxSim: for each query token, the
best-matching document token, summed. Loads a PyLate model folder, or builds a ColBERT model
from the bundled all-MiniLM-L6-v2 (PyLate adds a 384 -> 128 projection head; an untrained head
is random, so it is seeded for reproducible vectors; train it with ragembed's fine-tuning).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ragembed.embedders.backends import Backend, Quantize, Runtime
from ragembed.embedders.base import CacheOption, Embedder, Role
from ragembed.embedders.models import (
    DEFAULT_MODEL,
    check_model_location,
    load_error,
    model_dim,
    model_fingerprint,
    quiet_loading,
    resolve_model_name,
)
from ragembed.embedders.settings import Setting
from ragembed.embedders.windows import Truncation, truncation
from ragembed.errors import InvalidInputError, MissingDependencyError
from ragembed.types import EmbeddingKind, MultiVectorEmbeddings, narrow


class ColBERTEmbedder(Embedder):
    """Token-level vectors from a PyLate ColBERT model.

    pool_factor > 1 merges similar document tokens (PyLate's hierarchical token pooling), cutting
    the vectors stored per document by about that factor for a small loss in quality. Pooling runs
    after the embeddings cache, which keeps the whole tokens, so trying another pool factor on a
    corpus encodes nothing again. A collection remembers the factor its documents were pooled
    with and refuses an embedder with another one (its new documents would not match).

    PyLate leaves punctuation tokens out of documents (its skiplist); drop_stop_words=True also
    leaves out English stop words (scikit-learn's list, those the tokenizer holds as one token),
    so documents store fewer vectors; queries keep theirs. A collection remembers this too.

    Args:
        model: a PyLate ColBERT model (hub name or folder), or a sentence-transformers model that
            PyLate turns into one (default: the bundled all-MiniLM-L6-v2 with a 128-dim head).
        pool_factor: see above (1: no pooling).
        drop_stop_words: see above (default False: only punctuation is left out).
        batch_size: texts per forward pass.
        seed: seeds the projection head PyLate adds to a plain model, so its vectors repeat.
        device: "cpu", "cuda", ...
        cache: as DenseEmbedder's.
        show_progress: a progress bar while embedding many texts.
        backend, quantize: what runs the transformer, as DenseEmbedder's (the projection head
            stays in torch: a 384 x 128 matrix is a small share of the work).
    """

    kind = EmbeddingKind.MULTIVECTOR
    takes_model = True

    def __init__(
        self,
        model: str | None = None,
        *,
        pool_factor: int = 1,
        drop_stop_words: bool = False,
        batch_size: int = 32,
        seed: int = 0,
        device: str | None = None,
        cache: CacheOption = None,
        show_progress: bool = False,
        backend: Backend = "torch",
        quantize: Quantize = None,
    ) -> None:
        super().__init__(cache=cache, show_progress=show_progress)
        self.runtime = Runtime.checked(backend, quantize, device)
        if not isinstance(pool_factor, int) or pool_factor < 1:
            raise InvalidInputError(f"pool_factor must be an integer >= 1, got {pool_factor!r}")
        try:
            import torch
            from pylate import models
        except ImportError as exc:
            raise MissingDependencyError.for_extra("pylate", "colbert") from exc
        self.model_name = model or DEFAULT_MODEL
        check_model_location(self.model_name)
        try:
            with torch.random.fork_rng(devices=[]), quiet_loading():
                torch.manual_seed(seed)
                self.model = models.ColBERT(model_name_or_path=resolve_model_name(self.model_name), device=device)
        except Exception as exc:
            raise load_error(self.model_name, exc) from exc
        self.pool_factor, self.batch_size, self.seed = pool_factor, batch_size, seed
        self.drop_stop_words = drop_stop_words
        if drop_stop_words:
            self._skip_stop_words()
        self.fingerprint = model_fingerprint(resolve_model_name(self.model_name))
        # PyLate may add its [Q]/[D] marker tokens to the vocabulary, so its transformer gets its
        # own export, never the dense model's.
        self.runtime.apply(self.model, f"colbert|{self.fingerprint}")

    def __repr__(self) -> str:
        return (
            f"ColBERTEmbedder(model={self.model_name!r}, dim={self.dim}, pool_factor={self.pool_factor}, "
            f"drop_stop_words={self.drop_stop_words}, backend={self.runtime.backend!r})"
        )

    @property
    def dim(self) -> int:
        return model_dim(self.model)

    def settings(self) -> tuple[Setting, ...]:
        # The cache holds whole tokens: pooling runs on them (not cached); collections indexed
        # before pooling and stop words were recorded were unpooled and kept stop words.
        return (
            Setting("seed", self.seed),
            Setting("pool_factor", self.pool_factor, legacy=1, cached=False),
            Setting("drop_stop_words", self.drop_stop_words, legacy=False),
            *self.runtime.settings(),
        )

    def truncation(self, texts: Sequence[str]) -> Truncation | None:
        # PyLate cuts documents at document_length tokens, its [D] marker included.
        window = self.model.document_length
        if window is None:  # PyLate sets it when the model loads; a model without one cuts nothing
            return None
        marker = 0 if self.model.document_prefix_id is None else 1
        return truncation(self.model.tokenizer, texts, window, repr(self), added=marker)

    def passage_window(self) -> tuple[Any, int] | None:
        window = self.model.document_length
        if window is None:
            return None
        marker = 0 if self.model.document_prefix_id is None else 1
        special = len(self.model.tokenizer("")["input_ids"])
        return self.model.tokenizer.backend_tokenizer, int(window) - special - marker

    def _skip_stop_words(self) -> None:
        """Add the stop words the tokenizer holds whole to PyLate's skiplist (the token ids its
        document encoding leaves out); a word split into pieces has no one id to skip."""
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        vocabulary: dict[str, int] = self.model.tokenizer.get_vocab()
        words = sorted(w for w in ENGLISH_STOP_WORDS if w in vocabulary)
        self.model.skiplist_words = list(self.model.skiplist_words or ()) + words
        self.model.skiplist = list(self.model.skiplist) + [vocabulary[w] for w in words]

    def embed(self, texts: Sequence[str], role: Role) -> MultiVectorEmbeddings:
        tokens = narrow(super().embed(texts, role), MultiVectorEmbeddings)
        if role == "query" or self.pool_factor == 1:  # queries keep every token, as in PyLate
            return tokens
        return self.pool(tokens)

    def pool(self, tokens: MultiVectorEmbeddings) -> MultiVectorEmbeddings:
        """Documents' tokens merged by PyLate's hierarchical pooling (the first, [CLS], kept)."""
        import torch

        pooled = self.model.pool_embeddings_hierarchical(
            [torch.from_numpy(m) for m in tokens.vectors], pool_factor=self.pool_factor, protected_tokens=1
        )
        return MultiVectorEmbeddings(tuple(p.numpy().astype(np.float32) for p in pooled))

    def _encode(self, texts: list[str], role: Role) -> MultiVectorEmbeddings:
        is_query = role == "query"
        vectors = self.model.encode(texts, batch_size=self.batch_size, is_query=is_query, show_progress_bar=False)
        return MultiVectorEmbeddings(tuple(np.asarray(v, dtype=np.float32) for v in vectors))
