"""What the two Qdrant adapters (qdrant-client and the embedded qdrant-edge engine) share:
payload layout, filters, result order, and how a rescoring plan maps onto Qdrant's
native quantization search parameters.

Both APIs build the same Qdrant objects under different class names; `FilterClasses` names the
constructors, so one translation serves both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ragembed.quantization import dequantize_int8, quantize_int8
from ragembed.stores.base import Fusion, Plan, VectorField, VectorSearch
from ragembed.stores.capabilities import FilterKeys
from ragembed.stores.filters import Condition, Range
from ragembed.types import (
    DenseEmbeddings,
    Document,
    Embeddings,
    Hit,
    MultiVectorEmbeddings,
    Precision,
    SparseEmbeddings,
)

SCHEMA_KEY = "ragembed_schema"
# '.' and '[' would be read as a JSON path into the payload, so Qdrant filters on these keys only.
QDRANT_FILTER_KEYS = FilterKeys(re.compile(r"^[A-Za-z0-9_-]+$"), "letters, digits, '_' and '-'")


def payload_of(doc: Document) -> dict[str, Any]:
    # Metadata sits under one key, so filters address "metadata.<key>" and user keys can never
    # collide with ragembed's own. A JSON copy gives it back bit for bit: qdrant-edge-py 0.9
    # returns some floats one ulp off (0.20275631546974182 comes back as ...185).
    return {
        "doc_id": doc.id,
        "text": doc.text,
        "metadata": dict(doc.metadata),
        "metadata_json": json.dumps(dict(doc.metadata)),
    }


def metadata_of(payload: Mapping[str, Any]) -> dict[str, Any]:
    if "metadata_json" in payload:
        metadata: dict[str, Any] = json.loads(payload["metadata_json"])
    return metadata
    return dict(payload.get("metadata") or {})


def document_of(payload: Mapping[str, Any]) -> Document:
    return Document(payload["doc_id"], payload["text"], metadata_of(payload))


def hit_of(payload: Mapping[str, Any], score: float) -> Hit:
    return Hit(payload["doc_id"], float(score), payload["text"], metadata_of(payload))


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


def needs_stages(plan: Plan, sharded: bool) -> bool:
    """Whether one Qdrant query would rank `plan` differently from ragembed's plan semantics
    (the memory store's), so that its stages must run one query each (steps.by_stage):
      - any fusion: Qdrant cuts each stage at its limit with ties in no set order (BM25 scores
        tie often, so a tied document at the cut-off is in or out at random) and its RRF breaks
        no ties, while ragembed decides every tie by document id; its weighted RRF also stretches
        ranks (1 / (rank / w + k)) where ragembed's, like Elasticsearch's, scales scores (w / (k + rank));
      - on a sharded collection, a stage with candidate stages under it: Qdrant runs it on each
        shard apart, each rescoring its own top candidates (a Rescore step is one search on the
        quantized index, and is left to the engine)."""
    if isinstance(plan, Fusion):
        return True
    if isinstance(plan, VectorSearch) and plan.prefetch and sharded:
        return True
    return any(needs_stages(p, sharded) for p in plan.prefetch)


def client_side_vectors(f: VectorField, dense: np.ndarray, query: bool = False) -> np.ndarray:
    """For engines without native quantization (Qdrant local mode): vectors whose dot product
    ranks exactly like the memory store's quantized scores. int8: the de-quantized codes; binary:
    +-1 per sign bit (their dot product is dim - 2 * Hamming distance); the query of an
    asymmetric binary field stays float32."""
    if query and f.asymmetric:
        return dense
    if f.precision is Precision.INT8:
        calibration = f.int8_calibration()
        return dequantize_int8(quantize_int8(DenseEmbeddings(dense), calibration).data, calibration)
    if f.precision is Precision.BINARY:
        return np.where(dense > 0, 1.0, -1.0).astype(np.float32)
    return dense


def vector_values(
    f: VectorField,
    emb: Embeddings,
    row: int,
    sparse: Callable[[list[int], list[float]], Any],
    client_side_quantization: bool,
    query: bool = False,
) -> Any:
    """One document's (or, with query=True, the query's) vector for `f`, as the Qdrant APIs take it."""
    if isinstance(emb, SparseEmbeddings):
        return sparse(emb.indices[row].tolist(), emb.values[row].tolist())
    if isinstance(emb, MultiVectorEmbeddings):
        return emb.vectors[row].tolist()
    data = emb.data[row : row + 1]
    if client_side_quantization:
        data = client_side_vectors(f, data, query)
    return data[0].tolist()
