"""A collection's schema: its named vector fields and the manifest of how they were encoded.

Every store saves `Schema.to_dict()` with the collection (Qdrant in the collection's metadata,
Qdrant Edge and the memory store in a file beside their data, Weaviate in the class description)
and reads it back with `Schema.from_dict`, which also reads schemas saved by earlier versions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ragembed.errors import InvalidInputError, SchemaMismatchError
from ragembed.muvera import MuveraShape
from ragembed.quantization import Int8Calibration, quantized_as_float
from ragembed.types import Datatype, EmbeddingKind, Precision, parse_enum

Distance = Literal["cosine", "dot"]
# What a saved VectorField holds, beside `asymmetric`, `datatype`, `muvera` and `embedder` (absent
# from schemas saved before they existed).
FIELD_KEYS = ("name", "kind", "dim", "precision", "distance", "idf", "calibration")
# The name of the embedder of each kind a Retriever makes by default (DenseEmbedder, BM25Embedder,
# ColBERTEmbedder); collections recorded before embedders had names recorded them by kind, so the
# default names are the kinds' own.
DEFAULT_EMBEDDER: dict[EmbeddingKind, str] = {kind: kind.value for kind in EmbeddingKind}
# Embedder names become part of field names (vector names in Qdrant and Weaviate): letters,
# digits and single underscores.
EMBEDDER_NAME = re.compile(r"^[A-Za-z](?:_?[A-Za-z0-9])*$")


def check_embedder_name(name: object) -> str:
    """An embedder name (a kind, as records made before names, stands for its default name), or an
    InvalidInputError saying what one looks like."""
    if isinstance(name, EmbeddingKind):
        return DEFAULT_EMBEDDER[name]
    if not isinstance(name, str) or not EMBEDDER_NAME.fullmatch(name) or len(name) > 40:
        raise InvalidInputError(
            f"embedder name {name!r}: use letters, digits and single underscores, starting with a letter "
            "(at most 40), e.g. 'colbert_b'"
        )
    return name


@dataclass(frozen=True)
class VectorField:
    """One named vector per document.

    precision: how the store keeps and searches the field. Dense vectors always arrive as float32
        (documents and queries); an int8 or binary field is quantized by the store itself, the
        way engines with native quantization (Qdrant, Weaviate) do it. A quantized multi-vector
        field keeps its float32 token vectors too (Qdrant: on disk, the codes in RAM): searches
        score MaxSim on the codes and rescore the best candidates with the originals (a Rescore
        plan whose original is the field itself; stores declare it: quantized_multivectors).
    calibration: int8 ranges ({"lo": [...], "hi": [...]}) that int8 vectors (or tokens) were
        quantized with.
    idf: sparse fields only; the store multiplies query weights by each term's inverse document
        frequency over the collection (Qdrant's Modifier.IDF), which turns BM25 vectors into BM25.
    asymmetric: binary fields only. The query keeps its values and is scored against the
        documents' sign bits (the dot product of q with their +-1 vectors), instead of being
        reduced to sign bits itself (dim - 2 * Hamming distance). Same 1 bit per stored
        dimension; at 1M SciFact-derived vectors, rescoring 10 x k candidates, it keeps 0.78 of
        the exact top-10 where Hamming keeps 0.59 (memory store; Qdrant Edge 0.86 and 0.74,
        docs/benchmarks.md). Qdrant: query_encoding scalar8bits.
    datatype: multi-vector fields only; how the store keeps the token vectors (types.Datatype:
        float32, float16, or Qdrant's TurboQuant turbo8/turbo4). Stores declare the datatypes they
        keep (Capabilities.datatypes) and refuse the others.
    muvera: a dense field of MUVERA encodings (muvera.MuveraShape.to_dict()): its vectors derive
        from the multi-vector embeddings, not the dense ones (`source`); to the store it is a
        plain float32 dense field with dot-product distance.
    embedder: the name of the embedder whose embeddings the vectors derive from (default: the
        default embedder of the field's kind, or of multi-vectors for MUVERA encodings).
    per_passage: a multi-vector field holding one dense vector per passage of each document (a
        dense embedder's, unit length, distance "dot"): MaxSim with the query's one vector is the
        cosine of the document's best passage; or a sparse field (BM25 with idf) holding one
        vector per passage, a document scored by its best passage, IDF counted over passages. The
        collection's `Schema.passages` says how documents were split; a sparse field's passages
        are those of the passage map (`Schema.passage_map_field`).
    """

    name: str
    kind: EmbeddingKind
    dim: int
    precision: Precision = Precision.FLOAT32
    distance: Distance = "cosine"
    idf: bool = False
    calibration: Mapping[str, Any] | None = None
    asymmetric: bool = False
    datatype: Datatype = Datatype.FLOAT32
    muvera: Mapping[str, int] | None = None
    embedder: str = ""
    per_passage: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", parse_enum(EmbeddingKind, self.kind, f"field {self.name!r}: kind"))
        object.__setattr__(self, "precision", parse_enum(Precision, self.precision, f"field {self.name!r}: precision"))
        object.__setattr__(self, "datatype", parse_enum(Datatype, self.datatype, f"field {self.name!r}: datatype"))
        if not self.name or not isinstance(self.name, str):
            raise InvalidInputError(f"vector field names must be non-empty strings, got {self.name!r}")
        if self.distance not in ("cosine", "dot"):
            raise InvalidInputError(f"field {self.name!r}: distance must be 'cosine' or 'dot', got {self.distance!r}")
        if self.precision is Precision.INT8 and self.calibration is None:
            raise InvalidInputError(f"int8 field {self.name!r} needs its calibration (lo/hi ranges)")
        if self.precision is not Precision.FLOAT32 and self.kind is EmbeddingKind.SPARSE:
            raise InvalidInputError(f"field {self.name!r}: only dense and multi-vector fields can be int8 or binary")
        if self.precision is not Precision.FLOAT32 and self.datatype is not Datatype.FLOAT32:
            raise InvalidInputError(
                f"field {self.name!r}: a {self.precision.value} multi-vector field keeps a quantized index "
                f"beside float32 token vectors, so its datatype cannot be {self.datatype.value}; choose one: "
                f"precision {self.precision.value!r} (RAM: the codes; disk: float32 originals) or datatype "
                f"{self.datatype.value!r} (the tokens themselves replaced)"
            )
        if self.asymmetric and self.precision is not Precision.BINARY:
            raise InvalidInputError(f"field {self.name!r}: only binary fields can be asymmetric")
        if self.datatype is not Datatype.FLOAT32 and self.kind is not EmbeddingKind.MULTIVECTOR:
            raise InvalidInputError(
                f"field {self.name!r}: only multi-vector fields take a datatype other than float32; "
                "shrink a dense field with precision 'int8' or 'binary' instead"
            )
        if self.muvera is not None:
            self._check_muvera(MuveraShape.from_dict(self.muvera))
        passage_dense = self.kind is EmbeddingKind.MULTIVECTOR and self.distance == "dot"
        passage_sparse = self.kind is EmbeddingKind.SPARSE and self.idf
        if self.per_passage and not (passage_dense or passage_sparse):
            raise InvalidInputError(
                f"field {self.name!r}: one vector per passage is a multi-vector field of unit vectors with "
                f"distance 'dot' (a dense model's) or a sparse field with idf (BM25's), not a {self.kind.value} "
                f"field with {self.distance!r}"
            )
        source_kind = EmbeddingKind.MULTIVECTOR if self.muvera is not None else self.kind
        if self.per_passage and self.kind is EmbeddingKind.MULTIVECTOR:
            source_kind = EmbeddingKind.DENSE
        object.__setattr__(self, "embedder", check_embedder_name(self.embedder or DEFAULT_EMBEDDER[source_kind]))

    def _check_muvera(self, shape: MuveraShape) -> None:
        layout = (self.kind, self.precision, self.distance, self.dim)
        if layout != (EmbeddingKind.DENSE, Precision.FLOAT32, "dot", shape.dim):
            raise InvalidInputError(
                f"field {self.name!r}: MUVERA encodings {shape.label} are float32 dense vectors of "
                f"{shape.dim} dimensions with distance 'dot', not {self.precision.value} {self.kind.value} "
                f"of {self.dim} with {self.distance!r}"
            )

    @property
    def source(self) -> str:
        """The embedder whose embeddings this field's vectors derive from."""
        return self.embedder

    def int8_calibration(self) -> Int8Calibration:
        """The ranges an int8 field quantizes with (every int8 field has them: __post_init__)."""
        if self.calibration is None:
            raise InvalidInputError(f"field {self.name!r} is {self.precision.value}, not int8: it has no calibration")
        return Int8Calibration.from_dict(self.calibration)

    def scored_as_float(self, vectors: np.ndarray, query: bool = False) -> np.ndarray:
        """float32 vectors whose dot products equal this field's quantized scores (for float32
        kernels: MaxSim on codes, engines without native quantization); the query of an
        asymmetric binary field keeps its values. A float32 field's vectors are returned as given."""
        if self.precision is Precision.FLOAT32:
            return vectors
        calibration = self.int8_calibration() if self.precision is Precision.INT8 else None
        return quantized_as_float(vectors, self.precision, calibration, keep_values=query and self.asymmetric)

    def same_layout(self, other: VectorField) -> bool:
        """Same name, kind, dimension, precision, distance, IDF, query encoding, datatype, MUVERA
        shape and embedder: interchangeable."""
        mine = (
            self.name,
            self.kind,
            self.dim,
            self.precision,
            self.distance,
            self.idf,
            self.asymmetric,
            self.datatype,
            self.muvera,
            self.embedder,
            self.per_passage,
        )
        theirs = (
            other.name,
            other.kind,
            other.dim,
            other.precision,
            other.distance,
            other.idf,
            other.asymmetric,
            other.datatype,
            other.muvera,
            other.embedder,
            other.per_passage,
        )
        return mine == theirs

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "dim": self.dim,
            "precision": self.precision.value,
            "distance": self.distance,
            "idf": self.idf,
            "calibration": dict(self.calibration) if self.calibration else None,
            "asymmetric": self.asymmetric,
            "datatype": self.datatype.value,
            "muvera": dict(self.muvera) if self.muvera is not None else None,
            "embedder": self.embedder,
            "per_passage": self.per_passage,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VectorField:
        # Schemas saved before `asymmetric` existed have no such key: their binary fields are Hamming;
        # before `datatype`, every field was float32; before `muvera`, none was an encoding.
        saved: dict[str, Any] = {k: data.get(k) for k in FIELD_KEYS}  # __post_init__ checks each
        return cls(
            **saved,
            asymmetric=bool(data.get("asymmetric", False)),
            datatype=data.get("datatype") or Datatype.FLOAT32,
            muvera=data.get("muvera"),
            embedder=data.get("embedder") or "",
            per_passage=bool(data.get("per_passage", False)),
        )


@dataclass(frozen=True)
class Schema:
    """A collection's manifest: its vector fields, and how each embedder that filled them encodes
    (`encoders`: Embedder.encoder_state() by embedder name: the model and every setting, BM25's
    average document length). The Retriever restores its embedders from it, so documents and
    queries of a later session are encoded exactly like the first documents. `passages`: how
    documents were split into passages before the embedders with a window embedded them
    (passages.Chunking.record()), None when they were embedded whole.
    """

    fields: tuple[VectorField, ...]
    encoders: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    passages: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple(self.fields))
        names = [f.name for f in self.fields]  # none at all is fine: a keyword-only collection
        if len(set(names)) != len(names):
            raise InvalidInputError(f"vector field names repeat: {names}")
        if not isinstance(self.encoders, Mapping) or not all(isinstance(s, Mapping) for s in self.encoders.values()):
            raise InvalidInputError(
                f"a schema's encoders map an embedder name to a mapping of settings, got {self.encoders!r}"
            )
        encoders = {check_embedder_name(name): dict(s) for name, s in self.encoders.items()}
        object.__setattr__(self, "encoders", encoders)

    def __getitem__(self, name: str) -> VectorField:
        for f in self.fields:
            if f.name == name:
                return f
        raise InvalidInputError(
            f"the collection has no vector field {name!r}; its fields are {self.names}. Index with "
            "a strategy that needs that field first"
        )

    def __contains__(self, name: object) -> bool:
        return any(f.name == name for f in self.fields)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def passage_map_field(self) -> VectorField | None:
        """The per-passage field whose vectors each document's passage map copies (types.
        PassageMap): the collection's first of dense passage vectors. Fields are only ever
        appended, and only while the collection is empty, so it never changes under stored
        documents."""
        return next((f for f in self.fields if f.per_passage and f.kind is EmbeddingKind.MULTIVECTOR), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fields": [f.to_dict() for f in self.fields],
            "encoders": {name: dict(state) for name, state in self.encoders.items()},
            "passages": dict(self.passages) if self.passages is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        encoders = data.get("encoders")
        if encoders is None:  # saved before the manifest: each field carried its embedder's state
            encoders = {}
            for f in data["fields"]:
                if f.get("encoder_state"):
                    encoders.setdefault(f["kind"], f["encoder_state"])
        return cls(tuple(VectorField.from_dict(f) for f in data["fields"]), encoders, data.get("passages"))

    def merged_with(self, wanted: Schema) -> Schema:
        """This schema plus `wanted`'s new fields and encoders; a field both define must have the
        same layout, and an encoder both record keeps this schema's record (the one the stored
        documents were encoded with; the Retriever checks a new embedder against it)."""
        for f in wanted.fields:
            if f.name in self and not self[f.name].same_layout(f):
                raise SchemaMismatchError(
                    f"field {f.name!r} exists as {self[f.name].to_dict() | {'calibration': '...'}} but "
                    f"{f.to_dict() | {'calibration': '...'}} was asked for; use another collection "
                    "name, or delete this collection to re-index with the new settings"
                )
        if self.fields and not same_passages(self.passages, wanted.passages):
            raise SchemaMismatchError(
                f"this collection was indexed {describe_passages(self.passages)}, and "
                f"{describe_passages(wanted.passages)} was asked for; index with the collection's settings, or "
                "into another collection (or drop this one and index every document again)"
            )
        return Schema(
            self.fields + tuple(f for f in wanted.fields if f.name not in self),
            {**wanted.encoders, **self.encoders},
            self.passages if self.fields else wanted.passages,
        )


def same_passages(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether two passage records split alike (the splitter's version aside: it is not a choice)."""
    if a is None or b is None:
        return a is b
    return (a.get("size"), a.get("overlap", 0)) == (b.get("size"), b.get("overlap", 0))


def describe_passages(record: Mapping[str, Any] | None) -> str:
    """A passage record as an option a user gives: 'in passages (chunk_size 128, chunk_overlap 16)'."""
    if record is None:
        return "whole (not split into passages; CLI: --no-passages)"
    size = "window" if record.get("size") is None else record["size"]
    return f"in passages (chunk_size {size}, chunk_overlap {record.get('overlap', 0)})"
