"""Documents split into passages that fit a model's window, counted in the model's own tokens.

A transformer embeds at most its window of word pieces (all-MiniLM-L6-v2: 256, PyLate's ColBERT:
180) and silently drops the rest. Split into passages of at most the window, every word of a long
document is embedded, and a document's passage vectors become one multi-vector field scored by
MaxSim: its score is its best passage's.

Splitting is semantic-text-splitter's (Rust, the model's Hugging Face tokenizer counting): it
breaks where the text breaks, coarsest level first (Markdown: headings, blocks; then blank lines,
line breaks, sentences, words, characters) and reports each passage's character offset, which
llama-index-core's SentenceSplitter does not (its offsets are found again by str.find). What it
lacks is the heading path, so `heading_paths` reads ATX headings itself.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np

from ragembed.errors import InvalidInputError, MissingDependencyError
from ragembed.types import (
    DenseEmbeddings,
    Embeddings,
    MultiVectorEmbeddings,
    Passage,
    PassageMap,
    SparseEmbeddings,
    SparsePassageEmbeddings,
    check_positive,
)

# A passage of fewer word pieces carries too little text for a sentence embedding to mean much.
MIN_PASSAGE_TOKENS = 8
# An ATX heading ("## Storage") at the start of a line; a text with one is split as Markdown.
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
FENCE = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)


@dataclass(frozen=True)
class Chunking:
    """How documents are split into passages before they are embedded.

    size: word pieces a passage holds at most, special tokens aside (None: each embedder's whole
        window: 254 for all-MiniLM-L6-v2, 177 for PyLate's ColBERT of it; DEFAULT_CHUNKING: 128).
    overlap: word pieces a passage repeats from the one before it (smaller than the size).
    """

    size: int | None = None
    overlap: int = 0

    def __post_init__(self) -> None:
        if self.size is not None:
            check_positive("chunk_size", self.size, integer=True)
            if self.size < MIN_PASSAGE_TOKENS:
                raise InvalidInputError(
                    f"chunk_size {self.size} is below {MIN_PASSAGE_TOKENS} word pieces: too little text for a "
                    "passage embedding; pick a larger size, or leave it out for the default (128)"
                )
        if isinstance(self.overlap, bool) or not isinstance(self.overlap, int) or self.overlap < 0:
            raise InvalidInputError(f"chunk_overlap must be a whole number >= 0, got {self.overlap!r}")
        if self.size is not None and self.overlap >= self.size:
            raise InvalidInputError(
                f"chunk_overlap {self.overlap} must be smaller than chunk_size {self.size}; a passage would "
                "repeat the one before it whole"
            )

    def record(self) -> dict[str, Any]:
        """What a collection records (Schema.passages): the settings and the splitter's version,
        which decides where passages break."""
        return {"size": self.size, "overlap": self.overlap, "splitter": splitter_version()}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Chunking:
        return cls(record.get("size"), record.get("overlap", 0))

    def describe(self) -> str:
        size = "the model's window" if self.size is None else f"{self.size} word pieces"
        return f"passages of {size}, overlap {self.overlap}"


# What a new collection is split into when nothing is said: of the sizes measured (64, 128, the
# window, and sets of them), 128 word pieces scored best for its bytes on SciFact-long and the
# original SciFact (docs/benchmarks.md, "Long documents"). A model whose window is smaller (many
# sentence-transformers models embed 128 word pieces with their special tokens) gets its window.
DEFAULT_CHUNKING = Chunking(128)


@functools.cache  # reading a package's metadata takes a millisecond; every Retriever and index call asks
def splitter_version() -> str:
    return f"semantic-text-splitter {version('semantic-text-splitter')}"


class Splitter:
    """Splits texts into passages of at most `capacity` tokens of `tokenizer` (a Hugging Face
    `tokenizers.Tokenizer`), `overlap` of them shared by neighbours."""

    def __init__(self, tokenizer: Any, capacity: int, overlap: int) -> None:
        try:
            from semantic_text_splitter import MarkdownSplitter, TextSplitter
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise MissingDependencyError("splitting into passages needs semantic-text-splitter") from exc
        # A copy that counts every token: the tokenizer a model loads truncates (and pads) to the
        # window, so it would count a long passage as exactly the window and never split it.
        counting = Tokenizer.from_str(tokenizer.to_str())
        counting.no_truncation()
        counting.no_padding()
        self.capacity = capacity
        self._text = TextSplitter.from_huggingface_tokenizer(counting, capacity, overlap=overlap)
        self._markdown = MarkdownSplitter.from_huggingface_tokenizer(counting, capacity, overlap=overlap)

    def split(self, text: str) -> list[Passage]:
        """The passages of one text, in order, each with its offsets and (Markdown) heading path."""
        headings = heading_paths(text)
        splitter = self._markdown if headings else self._text
        passages = []
        for start, chunk in splitter.chunk_indices(text):
            end = start + len(chunk)
            passages.append(Passage(chunk, start, end, _path_at(headings, start)))
        if not passages:  # semantic-text-splitter yields none only for whitespace, refused before
            raise InvalidInputError(f"no passage in a text of {len(text)} characters; it holds only whitespace")
        return passages


def heading_paths(text: str) -> list[tuple[int, tuple[str, ...]]]:
    """Where each ATX heading of `text` starts, and the heading path from it on (outermost first),
    headings inside fenced code blocks left out."""
    fences = [m.start() for m in FENCE.finditer(text)]
    paths: list[tuple[int, tuple[str, ...]]] = []
    stack: list[tuple[int, str]] = []
    for m in HEADING.finditer(text):
        if bisect.bisect_right(fences, m.start()) % 2:  # after an odd number of fences: in code
            continue
        level = len(m.group(1))
        stack = [(lv, title) for lv, title in stack if lv < level] + [(level, m.group(2).strip())]
        paths.append((m.start(), tuple(title for _, title in stack)))
    return paths


def _path_at(headings: list[tuple[int, tuple[str, ...]]], offset: int) -> tuple[str, ...]:
    """The heading path in force at `offset`: the last heading that starts at or before it."""
    i = bisect.bisect_right([start for start, _ in headings], offset)
    return headings[i - 1][1] if i else ()


def grouped(embeddings: Embeddings, counts: Sequence[int]) -> MultiVectorEmbeddings | SparsePassageEmbeddings:
    """Per-passage embeddings regrouped per document: a dense model's passage vectors as one
    multi-vector per document, a multi-vector model's token vectors joined into one, BM25's
    passage vectors as one set per document."""
    bounds = list(itertools.pairwise(np.cumsum([0, *counts]).tolist()))
    if isinstance(embeddings, DenseEmbeddings):
        return MultiVectorEmbeddings(tuple(embeddings.data[a:b] for a, b in bounds))
    if isinstance(embeddings, MultiVectorEmbeddings):
        vectors = embeddings.vectors
        return MultiVectorEmbeddings(tuple(np.concatenate(vectors[a:b]) for a, b in bounds))
    if isinstance(embeddings, SparseEmbeddings):
        return SparsePassageEmbeddings(tuple(embeddings.take(range(a, b)) for a, b in bounds))
    raise TypeError(f"passage embeddings are regrouped once: got {type(embeddings).__name__}")


def passage_map(passages: Sequence[Passage], vectors: np.ndarray) -> PassageMap:
    """What a store keeps of a document's passages: spans, heading paths and vectors (int8)."""
    spans = np.array([(p.start, p.end) for p in passages], dtype=np.int32)
    return PassageMap.of(spans, vectors, [p.headings for p in passages])
