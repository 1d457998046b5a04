"""The Embedder interface: texts in, typed embeddings out.

Queries and documents are embedded separately because ColBERT and many dense models treat them
differently (prefixes, query expansion). The base class owns what every embedder shares:
input validation, the embeddings cache, chunking and the progress bar. Subclasses only encode.
"""

from __future__ import annotations

import inspect
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeVar

from tqdm.auto import tqdm

from ragembed.embedders.cache import EmbeddingCache, decode_row, encode_row, join_rows, rows_of
from ragembed.embedders.models import check_same_model
from ragembed.embedders.settings import Setting, recorded_statistics
from ragembed.embedders.windows import Truncation
from ragembed.errors import InvalidInputError
from ragembed.passages import DEFAULT_CHUNKING, Chunking, Splitter
from ragembed.types import EmbeddingKind, Embeddings, validate_texts

Role = Literal["document", "query"]
CacheOption = EmbeddingCache | str | os.PathLike[str] | bool | None

# Texts encoded per call to the model between two cache writes: small enough that an interrupted
# run keeps most of its work, large enough that the model still batches well.
CHUNK_SIZE = 256


E = TypeVar("E", bound="Embedder")


def resolve_cache(cache: CacheOption) -> EmbeddingCache | None:
    """True/None: the default cache; False: none; a path: a cache there; a cache: itself."""
    if cache is False:
        return None
    if cache is None or cache is True:
        return EmbeddingCache()
    if isinstance(cache, EmbeddingCache):
        return cache
    return EmbeddingCache(cache)


class Embedder(ABC):
    """Turns texts into embeddings of one kind (dense, multi-vector or sparse).

    What decides its vectors is listed once, in `settings()` (beside the model, where it has one):
    that list is both the embeddings cache's key (`identity`) and the record a collection keeps
    (`encoder_state()`), from which `restored()` checks an embedder and `from_state()` builds one.
    """

    kind: EmbeddingKind
    # Whether the constructor takes `model` (a hub name or folder), recorded as "model".
    takes_model: ClassVar[bool] = False
    model_name: str
    # The model's identity by content (models.model_fingerprint), set when it loads; "" without one.
    fingerprint: str = ""

    def __init__(self, *, cache: CacheOption = None, show_progress: bool = False) -> None:
        self.cache = resolve_cache(cache)
        self.show_progress = show_progress
        self._splitters: dict[Chunking, Splitter] = {}

    @property
    @abstractmethod
    def dim(self) -> int:
        """Vector dimension (for sparse: the size of the index space)."""

    def settings(self) -> tuple[Setting, ...]:
        """Every setting besides the model that changes the vectors (the one list: see the class)."""
        return ()

    def truncation(self, texts: Sequence[str]) -> Truncation | None:
        """How many of these documents the model's window cuts, and by how much (None: none is, or
        the embedder has no window, as BM25)."""
        return None

    @property
    def identity(self) -> str:
        """Everything that decides the vectors the cache holds (the class, the model's content and
        the cached settings): the embeddings cache's key. An embedder with neither a model
        fingerprint nor settings must say what decides its vectors by overriding this."""
        settings = self.settings()
        if not self.fingerprint and not settings:
            raise NotImplementedError(
                f"{type(self).__name__} has no model fingerprint and no settings(): override `identity` "
                "(or `settings()`) with what decides its vectors, so that the embeddings cache keeps "
                "two differently made embedders apart"
            )
        cached = {s.name: s.value for s in settings if s.cached}
        key = json.dumps(cached, sort_keys=True, default=repr)
        return f"{type(self).__module__}.{type(self).__qualname__}|{self.kind.value}|{self.fingerprint}|{key}"

    def passage_window(self) -> tuple[Any, int] | None:
        """The Hugging Face tokenizer (`tokenizers.Tokenizer`) the model counts word pieces with,
        and how many of a document's word pieces its window holds (special tokens, markers and the
        document prompt aside); None for an embedder without a window (BM25 reads whole texts)."""
        return None

    def splitter(self, chunking: Chunking) -> Splitter | None:
        """What splits documents into passages this model embeds whole, under `chunking`; None for
        an embedder without a window.

        Raises:
            InvalidInputError: chunking.size is above the model's window, or its overlap is not
                smaller than the window.
        """
        window = self.passage_window()
        if window is None:
            return None
        if chunking not in self._splitters:
            tokenizer, capacity = window
            size = capacity if chunking.size is None else chunking.size
            if chunking == DEFAULT_CHUNKING:  # the default serves models of a smaller window too
                size = min(size, capacity)
            if size > capacity:
                raise InvalidInputError(
                    f"chunk_size {size} is above {self!r}'s window: a passage of more than {capacity} word "
                    f"pieces would be cut; pick at most {capacity}, or 'window' (CLI: --chunk-size window) for each "
                    "model's whole window"
                )
            if chunking.overlap >= size:
                raise InvalidInputError(
                    f"chunk_overlap {chunking.overlap} must be smaller than the passage size, {size} word pieces "
                    f"for {self!r}"
                )
            self._splitters[chunking] = Splitter(tokenizer, size, chunking.overlap)
        return self._splitters[chunking]

    @abstractmethod
    def _encode(self, texts: list[str], role: Role) -> Embeddings:
        """Encode validated, non-empty texts."""

    def embed(self, texts: Sequence[str], role: Role) -> Embeddings:
        """Embed texts as documents or as queries (the models prompt and score them differently)."""
        return self._embed(validate_texts(texts, "texts" if role == "document" else "queries"), role)

    def embed_documents(self, texts: Sequence[str]) -> Embeddings:
        return self.embed(texts, "document")

    def embed_queries(self, texts: Sequence[str]) -> Embeddings:
        return self.embed(texts, "query")

    # A collection records how its documents were encoded (encoder_state: the model, how it ran,
    # statistics fitted on its corpus such as BM25's average document length) and encodes later
    # documents and queries with an embedder restored from that record. `fitted` and `restored`
    # return an embedder rather than changing this one, which may serve several collections.
    def fitted(self, texts: Sequence[str]) -> Embedder:
        """This embedder fitted to a new collection's corpus: a fitted copy where there is
        something to learn (BM25's average document length), else itself."""
        return self

    def fitted_to_passages(self, passages: Sequence[str]) -> Embedder:
        """This embedder fitted to a collection's passages, where it embeds passages with
        statistics of their own (BM25's average passage length) and has none yet, else itself."""
        return self

    def for_passages(self) -> Embedder:
        """The embedder that embeds this one's passages (BM25: normalised against passages), after
        `fitted_to_passages`."""
        return self

    def encoder_state(self) -> dict[str, Any]:
        """What a collection records about how this embedder encodes (JSON-serialisable): its
        class, the model's name and every setting."""
        model = {"model": self.model_name} if self.takes_model else {}
        return {"class": type(self).__name__} | model | {s.name: s.value for s in self.settings()}

    def restored(self: E, state: Mapping[str, Any]) -> E:
        """An embedder that encodes exactly like the one that recorded `state`: itself once the
        model and every setting are checked to match, or a copy carrying the recorded statistics.

        Raises:
            EncoderMismatchError: `state` was recorded by an embedder this one cannot stand in for
                (another model, runtime, tokeniser, prompt...); the message names the embedder to use.
        """
        if self.takes_model:
            check_same_model(state, self.model_name, type(self).__name__)
        fitted = recorded_statistics(state, self.settings(), type(self).__name__)
        return self._with_fitted(fitted) if fitted else self

    def _with_fitted(self: E, fitted: Mapping[str, Any]) -> E:
        """A copy of this embedder with the recorded corpus statistics (fitted settings) given."""
        raise NotImplementedError(f"{type(self).__name__} has no fitted settings")

    @classmethod
    def from_state(cls: type[E], state: Mapping[str, Any], **overrides: Any) -> E:
        """The embedder a collection's record describes (its model and settings), built anew;
        `overrides` replace recorded values or add options that do not change vectors
        (show_progress, device, cache). Settings the record lacks take the constructor's defaults."""
        accepted = inspect.signature(cls).parameters
        return cls(**({k: v for k, v in state.items() if k in accepted} | overrides))

    def _embed(self, texts: list[str], role: Role) -> Embeddings:
        key = self.identity if self.cache is not None else ""  # only the cache needs it
        blobs = self.cache.get_many(key, role, texts) if self.cache else [None] * len(texts)
        missing = list(dict.fromkeys(t for t, b in zip(texts, blobs) if b is None))
        fresh: dict[str, object] = {}
        with tqdm(
            total=len(missing),
            desc="embed queries" if role == "query" else "embed documents",
            unit="text",
            disable=not self.show_progress or len(missing) <= CHUNK_SIZE,
        ) as bar:
            for start in range(0, len(missing), CHUNK_SIZE):
                chunk = missing[start : start + CHUNK_SIZE]
                rows = rows_of(self._encode(chunk, role))
                fresh.update(zip(chunk, rows))
                if self.cache is not None:
                    self.cache.put_many(key, role, chunk, [encode_row(self.kind, r) for r in rows])
                bar.update(len(chunk))
        rows = [fresh[t] if b is None else decode_row(self.kind, b) for t, b in zip(texts, blobs)]
        return join_rows(self.kind, rows)
