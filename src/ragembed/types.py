"""Core types: documents, hits and the three kinds of embeddings.

Embeddings are explicit kinds (dense, multi-vector, sparse). Precision (float32, int8, binary)
is data carried by dense embeddings, not a class hierarchy: an int8 matrix is still a dense
matrix, it only scores differently.
"""

from __future__ import annotations

import base64
import enum
import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from ragembed.errors import InvalidInputError

MetadataValue = str | int | float | bool | None


def check_unicode(text: str, what: str) -> None:
    """Refuse a string that is not valid Unicode text: a lone surrogate ("\\ud800", which JSON
    escapes and wrongly decoded bytes produce) cannot be written as UTF-8 anywhere downstream."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{what} is not valid Unicode text: it holds the lone surrogate {text[exc.start]!r} at position "
            f"{exc.start} (wrongly decoded bytes, or a JSON '\\ud800' escape); decode the source with "
            "errors='replace', or remove that character"
        ) from None


def parse_enum(cls: type[enum.Enum], value: Any, what: str) -> Any:
    """cls(value), or an InvalidInputError naming the allowed values."""
    try:
        return cls(value)
    except ValueError:
        raise InvalidInputError(f"{what} {value!r} is not one of {', '.join(repr(m.value) for m in cls)}") from None


def check_positive(name: str, value: Any, *, integer: bool = False) -> None:
    """Refuse anything but a positive (whole, with integer=True) number; bools are not numbers."""
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0 or not math.isfinite(value):
        wanted = "a positive whole number" if integer else "a positive number"
        raise InvalidInputError(f"{name} must be {wanted}, got {value!r}")


class EmbeddingKind(str, enum.Enum):
    DENSE = "dense"
    MULTIVECTOR = "multivector"
    SPARSE = "sparse"


class Precision(str, enum.Enum):
    FLOAT32 = "float32"
    INT8 = "int8"
    BINARY = "binary"  # sign bits packed 8 per uint8 byte, as numpy.packbits writes them


class Datatype(str, enum.Enum):
    """How a store keeps a multi-vector field's token vectors themselves (no float32 copy is
    kept beside them, unlike int8/binary Precision, which adds a quantized index to float32
    originals). FLOAT16: half floats (2 bytes a dimension). TURBO8 / TURBO4: Qdrant's TurboQuant
    storage datatype (a random rotation, then 8 or 4 bits a dimension; lossy, Qdrant Edge only)."""

    FLOAT32 = "float32"
    FLOAT16 = "float16"
    TURBO8 = "turbo8"
    TURBO4 = "turbo4"

    @property
    def bits(self) -> int:
        """Bits a dimension takes (TurboQuant's per-vector scale aside)."""
        return {"float32": 32, "float16": 16, "turbo8": 8, "turbo4": 4}[self.value]


@dataclass(frozen=True)
class Document:
    """A text to index, with its id and flat metadata (used by filters)."""

    id: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise InvalidInputError(
                f"Document id must be a non-empty string, got {self.id!r}; give every document a "
                "unique string id (numbers: str(n))"
            )
        if "\x00" in self.id:
            raise InvalidInputError(f"Document id {self.id!r} contains a NUL character; remove it")
        check_unicode(self.id, f"Document id {self.id!r}")
        check_text(self.text, f"text of document {self.id!r}")
        if not isinstance(self.metadata, Mapping):
            raise InvalidInputError(
                f"metadata of document {self.id!r} must be a mapping, got {type(self.metadata).__name__}"
            )
        for key, value in self.metadata.items():
            if not isinstance(key, str) or not _is_metadata_value(value):
                raise InvalidInputError(
                    f"metadata of document {self.id!r}: {key!r}: {value!r:.60} is not allowed; metadata is "
                    "flat: string keys, values that are strings, numbers, booleans, None or lists of those"
                )
            check_unicode(key, f"metadata key {key!r} of document {self.id!r}")
            for v in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(v, str):
                    check_unicode(v, f"metadata {key!r} of document {self.id!r}")


def is_plain_name(name: Any) -> bool:
    """A name that becomes one file or folder name (a collection, a BEIR split) and cannot
    leave the folder it is joined to: non-empty, no separators, no NUL, no leading dot."""
    if not isinstance(name, str) or not name or name.startswith(".") or any(c in name for c in "/\\\0"):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_metadata_value(value: Any) -> bool:
    # Flat values every engine stores as a payload/property and every filter can compare; no
    # NaN or infinity, which JSON payloads cannot carry and comparisons cannot order.
    if isinstance(value, (list, tuple)):
        return all(_is_scalar(v) for v in value)
    return _is_scalar(value)


def _is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int, bool))


@dataclass(frozen=True)
class Passage:
    """A passage of a document: its text, where it lies in the document's text (`text ==
    document_text[start:end]`, character offsets) and, in Markdown, the headings it falls under,
    outermost first."""

    text: str
    start: int
    end: int
    headings: tuple[str, ...] = ()


class PassageMap:
    """Where a document's passages lie, their heading paths and a compact copy of their vectors,
    kept in the store beside the document and returned with each hit, so the hit's best passage
    is named without a second read from the store or splitting its text again: reading a
    multi-vector field back costs 0.7 ms a hit on Qdrant Edge (its vectors come back as Python
    lists), more than the search itself; splitting a 1,700-word text costs milliseconds.

    A map is its stored text (`encoded`: base64, an ordinary payload string to any engine) and
    decodes it on first use: engines return a few hits more than asked (executor.with_ties), and
    decoding costs about 2 microseconds a passage.

    spans: (n, 2) int32 character offsets [start, end) of the n passages, in order.
    codes, scales: the passages' unit vectors of the collection's first per-passage field
        (Schema.passage_map_field) as int8 codes times one float32 scale per passage (its largest
        magnitude / 127): a quarter of float32's bytes, scores within 2e-3 of float32's
        (tests/unit/test_passage_map.py), and 8x faster to widen than float16 in numpy.
    headings: each passage's Markdown heading path (outermost first); () for none at all.
    """

    # The stored form: a fixed header (passages, dimensions, bytes of headings), spans, scales,
    # codes, then the heading paths as JSON.
    _HEADER = np.dtype([("n", "<u4"), ("dim", "<u4"), ("headings", "<u4")])

    def __init__(self, encoded: str) -> None:
        self.encoded = encoded

    @classmethod
    def of(cls, spans: np.ndarray, vectors: np.ndarray, headings: Sequence[Sequence[str]] = ()) -> PassageMap:
        """The map of n passages at `spans` ((n, 2) [start, end)) whose unit vectors are `vectors`
        ((n, dim)), with a heading path each (or none at all)."""
        spans = np.ascontiguousarray(spans, dtype="<i4")
        vectors = np.asarray(vectors, dtype=np.float32)
        n = len(spans)
        if spans.shape != (n, 2) or vectors.ndim != 2 or len(vectors) != n or not n:
            raise InvalidInputError(
                f"a passage map needs (n, 2) spans and (n, dim) vectors for n >= 1 passages, got {spans.shape} "
                f"and {vectors.shape}"
            )
        paths = [list(path) for path in headings]
        if paths and len(paths) != n:
            raise InvalidInputError(f"a passage map needs a heading path per passage: {len(paths)} for {n}")
        top = np.abs(vectors).max(axis=1)
        scales = np.where(top > 0, top / 127, 1.0).astype("<f4")
        codes = np.rint(vectors / scales[:, None]).astype(np.int8)
        text = json.dumps(paths, ensure_ascii=False).encode() if any(paths) else b""
        header = np.array([(n, vectors.shape[1], len(text))], dtype=cls._HEADER)
        raw = header.tobytes() + spans.tobytes() + scales.tobytes() + codes.tobytes() + text
        return cls(base64.b64encode(raw).decode("ascii"))

    @functools.cached_property
    def _parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[tuple[str, ...], ...]]:
        raw = base64.b64decode(self.encoded)
        n, dim, heading_bytes = (int(x) for x in np.frombuffer(raw, self._HEADER, count=1)[0])
        at = self._HEADER.itemsize
        spans = np.frombuffer(raw, "<i4", count=2 * n, offset=at).reshape(n, 2)
        scales = np.frombuffer(raw, "<f4", count=n, offset=at + spans.nbytes)
        at += spans.nbytes + scales.nbytes
        codes = np.frombuffer(raw, np.int8, count=n * dim, offset=at).reshape(n, dim)
        at += codes.nbytes
        headings = json.loads(raw[at : at + heading_bytes]) if heading_bytes else ()
        return spans, scales, codes, tuple(tuple(path) for path in headings)

    @property
    def spans(self) -> np.ndarray:
        return self._parts[0]

    @property
    def scales(self) -> np.ndarray:
        return self._parts[1]

    @property
    def codes(self) -> np.ndarray:
        return self._parts[2]

    @property
    def headings(self) -> tuple[tuple[str, ...], ...]:
        return self._parts[3]

    @staticmethod
    def scores(maps: Sequence[PassageMap], query: np.ndarray) -> list[np.ndarray]:
        """Each map's passage scores: their dot products with a (unit) float32 query vector, all
        maps' codes widened and multiplied at once (per map, the calls would cost more than the
        arithmetic)."""
        if not maps:
            return []
        codes = np.concatenate([m.codes for m in maps]).astype(np.float32)
        products = (codes @ np.asarray(query, dtype=np.float32)) * np.concatenate([m.scales for m in maps])
        return np.split(products, np.cumsum([len(m.spans) for m in maps])[:-1])

    def passage(self, text: str, i: int) -> Passage:
        """Passage i of the document whose text is `text`."""
        start, end = (int(x) for x in self.spans[i])
        return Passage(text[start:end], start, end, self.headings[i] if self.headings else ())


@dataclass(frozen=True)
class Hit:
    """One search result: the document id, its score (higher is better), text and metadata.

    passage: in a collection indexed in passages, the document's passage that scored best (for
    Retriever.search_passages, the passage this hit is; `text` is then the passage's text).
    passage_map: a store's hit in such a collection carries the document's stored passage map,
    from which the Retriever names `passage`; the Retriever's hits carry none."""

    id: str
    score: float
    text: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    passage: Passage | None = None
    passage_map: PassageMap | None = field(default=None, repr=False, compare=False)


def validate_texts(texts: Sequence[str], what: str = "texts") -> list[str]:
    """Return texts as a list, or raise InvalidInputError naming the first bad one."""
    if isinstance(texts, str):
        raise InvalidInputError(f"{what} must be a list of strings, not one string; wrap it: [text]")
    if texts is None:
        raise InvalidInputError(f"{what} is None; give a list of non-empty strings")
    if not isinstance(texts, Iterable) or isinstance(texts, (bytes, Mapping)):
        raise InvalidInputError(f"{what} must be a list of strings, got {type(texts).__name__}")
    texts = list(texts)
    if not texts:
        raise InvalidInputError(f"{what} is empty; give at least one non-empty string")
    for i, text in enumerate(texts):
        check_text(text, f"{what}[{i}]")
    return texts


def check_text(text: Any, what: str) -> None:
    """A text to embed: a string with something besides whitespace, valid Unicode."""
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} is {type(text).__name__} ({text!r:.60}), not a string; convert it or drop it")
    if not text.strip():
        raise InvalidInputError(f"{what} is empty or whitespace only; drop it or give it some text")
    check_unicode(text, what)


def validate_documents(documents: Iterable[Document]) -> list[Document]:
    """Return documents as a list, or raise InvalidInputError (wrong type, duplicate ids)."""
    if documents is None:
        raise InvalidInputError("documents is None; give a list of ragembed.Document")
    if isinstance(documents, Document):
        raise InvalidInputError("give a list of documents, not one Document; wrap it: [document]")
    if isinstance(documents, (str, bytes, Mapping)) or not isinstance(documents, Iterable):
        raise InvalidInputError(
            f"documents must be a list of ragembed.Document, got {type(documents).__name__}; build them "
            "with Document(id=..., text=..., metadata={...})"
        )
    docs = list(documents)
    if not docs:
        raise InvalidInputError("documents is empty; give at least one ragembed.Document")
    seen: dict[str, int] = {}
    for i, doc in enumerate(docs):
        if not isinstance(doc, Document):
            raise InvalidInputError(
                f"documents[{i}] is {type(doc).__name__}, not ragembed.Document; "
                "build one with Document(id=..., text=..., metadata={...})"
            )
        if doc.id in seen:
            raise InvalidInputError(
                f"duplicate document id {doc.id!r} at positions {seen[doc.id]} and {i} of one batch; "
                "ids must be unique within a batch (upserting the same id again later is fine)"
            )
        seen[doc.id] = i
    return docs


def _check_finite(array: np.ndarray, what: str) -> None:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InvalidInputError(f"{what} contains NaN or infinite values; check the model's output")


@dataclass(frozen=True, eq=False)
class DenseEmbeddings:
    """One vector per text: `data` is (n, dim) float32 or int8, or (n, dim/8) packed uint8."""

    data: np.ndarray
    precision: Precision = Precision.FLOAT32

    def __post_init__(self) -> None:
        expected = {Precision.FLOAT32: np.float32, Precision.INT8: np.int8, Precision.BINARY: np.uint8}
        precision = parse_enum(Precision, self.precision, "precision")
        object.__setattr__(self, "precision", precision)
        data = np.asarray(self.data)
        if data.ndim != 2:
            raise InvalidInputError(f"dense embeddings must be a 2-d (n, dim) array, got shape {data.shape}")
        if data.dtype != expected[precision]:
            if precision is Precision.FLOAT32 and data.dtype.kind in "fiu":
                data = data.astype(np.float32)
            else:
                raise InvalidInputError(
                    f"{precision.value} embeddings need dtype {np.dtype(expected[precision]).name}, got {data.dtype}"
                )
        _check_finite(data, "dense embeddings")
        object.__setattr__(self, "data", data)

    @property
    def kind(self) -> EmbeddingKind:
        return EmbeddingKind.DENSE

    @property
    def dim(self) -> int:
        """Dimension of the vectors (bits for binary precision)."""
        width = int(self.data.shape[1])
        return width * 8 if self.precision is Precision.BINARY else width

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self), self.dim)

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def take(self, rows: Sequence[int] | np.ndarray) -> DenseEmbeddings:
        return DenseEmbeddings(self.data[np.asarray(rows, dtype=np.int64)], self.precision)


@dataclass(frozen=True, eq=False)
class MultiVectorEmbeddings:
    """Several vectors per text (ColBERT tokens): one float32 (t_i, dim) array per text."""

    vectors: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        arrays = tuple(np.asarray(v, dtype=np.float32) for v in self.vectors)
        dims = {a.shape[1] for a in arrays if a.ndim == 2}
        for i, a in enumerate(arrays):
            if a.ndim != 2 or a.shape[0] == 0:
                raise InvalidInputError(
                    f"multi-vector embedding {i} must be a non-empty 2-d (tokens, dim) array, got shape {a.shape}"
                )
            _check_finite(a, f"multi-vector embedding {i}")
        if len(dims) > 1:
            raise InvalidInputError(f"multi-vector embeddings mix dimensions {sorted(dims)}; use one model")
        object.__setattr__(self, "vectors", arrays)

    @property
    def kind(self) -> EmbeddingKind:
        return EmbeddingKind.MULTIVECTOR

    @property
    def dim(self) -> int:
        return self.vectors[0].shape[1] if self.vectors else 0

    def __len__(self) -> int:
        return len(self.vectors)

    def take(self, rows: Sequence[int] | np.ndarray) -> MultiVectorEmbeddings:
        return MultiVectorEmbeddings(tuple(self.vectors[int(i)] for i in rows))


@dataclass(frozen=True, eq=False)
class SparseEmbeddings:
    """One sparse vector per text: sorted unique uint32 indices and float32 values."""

    indices: tuple[np.ndarray, ...]
    values: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.values):
            raise InvalidInputError(
                f"sparse embeddings have {len(self.indices)} index arrays but {len(self.values)} value arrays"
            )
        indices, values = [], []
        for i, (given_idx, given_val) in enumerate(zip(self.indices, self.values)):
            idx = np.asarray(given_idx, dtype=np.uint32)
            val = np.asarray(given_val, dtype=np.float32)
            if idx.shape != val.shape or idx.ndim != 1:
                raise InvalidInputError(f"sparse embedding {i}: indices {idx.shape} and values {val.shape} differ")
            _check_finite(val, f"sparse embedding {i}")
            if len(idx) > 1 and not (np.diff(idx.astype(np.int64)) > 0).all():
                order = np.argsort(idx, kind="stable")
                idx, val = idx[order], val[order]
                if not (np.diff(idx.astype(np.int64)) > 0).all():
                    raise InvalidInputError(f"sparse embedding {i} repeats an index; sum the values first")
            indices.append(idx)
            values.append(val)
        object.__setattr__(self, "indices", tuple(indices))
        object.__setattr__(self, "values", tuple(values))

    @property
    def kind(self) -> EmbeddingKind:
        return EmbeddingKind.SPARSE

    def __len__(self) -> int:
        return len(self.indices)

    def take(self, rows: Sequence[int] | np.ndarray) -> SparseEmbeddings:
        rows = [int(i) for i in rows]
        return SparseEmbeddings(tuple(self.indices[i] for i in rows), tuple(self.values[i] for i in rows))


@dataclass(frozen=True, eq=False)
class SparsePassageEmbeddings:
    """Several sparse vectors per text: the BM25 vectors of a document's passages, in order (a
    per-passage sparse field's documents; its queries are plain SparseEmbeddings)."""

    passages: tuple[SparseEmbeddings, ...]

    def __post_init__(self) -> None:
        for i, held in enumerate(self.passages):
            if not isinstance(held, SparseEmbeddings) or not len(held):
                raise InvalidInputError(
                    f"document {i}'s passage vectors must be non-empty SparseEmbeddings, got {held!r}"
                )
        object.__setattr__(self, "passages", tuple(self.passages))

    @property
    def kind(self) -> EmbeddingKind:
        return EmbeddingKind.SPARSE

    def __len__(self) -> int:
        return len(self.passages)

    def take(self, rows: Sequence[int] | np.ndarray) -> SparsePassageEmbeddings:
        return SparsePassageEmbeddings(tuple(self.passages[int(i)] for i in rows))


Embeddings = DenseEmbeddings | MultiVectorEmbeddings | SparseEmbeddings | SparsePassageEmbeddings
E = TypeVar("E", DenseEmbeddings, MultiVectorEmbeddings, SparseEmbeddings, SparsePassageEmbeddings)


def narrow(embeddings: Embeddings, form: type[E]) -> E:
    """The embeddings as the form a field of their kind holds (a store reading a dense field gets
    DenseEmbeddings); anything else is a bug in the caller, named here rather than as an
    AttributeError later."""
    if not isinstance(embeddings, form):
        raise TypeError(f"expected {form.__name__}, got {type(embeddings).__name__}")
    return embeddings
