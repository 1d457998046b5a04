"""How documents and ragembed filters map onto Weaviate properties.

Every object has `doc_id` (exact-match), `text` (word-tokenised, for Weaviate's BM25) and
`metadata_json` (the metadata, returned bit for bit). For filtering, each metadata key also
lands in typed array properties, one per value type it ever held:

    meta_<key>__s  text[] (field tokenisation: whole-value equality)
    meta_<key>__n  number[]
    meta_<key>__b  boolean[]

A Weaviate property has one type, but ragembed metadata may hold "2020" in one document and
2020 in another, or a list of mixed values; splitting by type keeps both filterable and gives
ragembed's filter semantics exactly: a list matches when any element does, numbers compare as
numbers (1 == 1.0) and a boolean never equals a number. Properties are added to the collection
the first time a key/type appears.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from ragembed.search.capabilities import PORTABLE
from ragembed.search.filters import Condition, Range
from ragembed.search.schema import Schema
from ragembed.types import Document, PassageMap
from weaviate.classes.config import DataType, Property, Tokenization
from weaviate.classes.query import Filter

TYPED = {"s": DataType.TEXT_ARRAY, "n": DataType.NUMBER_ARRAY, "b": DataType.BOOL_ARRAY}
RETURNED = ["doc_id", "text", "metadata_json"]

BASE_PROPERTIES = [
    Property(
        name="doc_id",
        data_type=DataType.TEXT,
        tokenization=Tokenization.FIELD,
        index_searchable=False,
        index_filterable=True,
    ),
    Property(
        name="text",
        data_type=DataType.TEXT,
        tokenization=Tokenization.WORD,
        index_searchable=True,
        index_filterable=False,
    ),
    Property(name="metadata_json", data_type=DataType.TEXT, index_searchable=False, index_filterable=False),
]
# A collection in passages keeps each document's passage map (types.PassageMap, base64 text),
# returned with its hits.
PASSAGE_MAP = Property(name="passage_map", data_type=DataType.TEXT, index_searchable=False, index_filterable=False)


def base_properties(schema: Schema) -> list[Property]:
    return BASE_PROPERTIES + ([PASSAGE_MAP] if schema.passage_map_field is not None else [])


def returned_properties(schema: Schema) -> list[str]:
    """The properties a hit is made of."""
    return RETURNED + ([PASSAGE_MAP.name] if schema.passage_map_field is not None else [])


class Impossible(Exception):
    """A filter no stored document can match (it names a key or type never stored)."""


def typed_name(key: str, kind: str) -> str:
    return f"meta_{key}__{kind}"


def value_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "b"
    if isinstance(value, (int, float)):
        return "n" if math.isfinite(value) else None  # NaN/inf match no filter anyway
    return "s" if isinstance(value, str) else None


def typed_values(metadata: Mapping[str, Any]) -> dict[str, list[Any]]:
    """{property name: values} of one document's filterable metadata."""
    typed: dict[str, list[Any]] = {}
    for key, value in metadata.items():
        if not PORTABLE.accepts(key):
            continue  # kept in metadata_json; filtering on it is refused, naming the rule
        for v in value if isinstance(value, (list, tuple)) else (value,):
            kind = value_kind(v)
            if kind:
                typed.setdefault(typed_name(key, kind), []).append(float(v) if kind == "n" else v)
    return typed


def properties_of(doc: Document, passage_map: PassageMap | None = None) -> dict[str, Any]:
    properties = {
        "doc_id": doc.id,
        "text": doc.text,
        "metadata_json": json.dumps(dict(doc.metadata)),
        **typed_values(doc.metadata),
    }
    if passage_map is not None:
        properties[PASSAGE_MAP.name] = passage_map.encoded
    return properties


def new_properties(docs: Iterable[Document], existing: set[str]) -> list[Property]:
    names = sorted({name for d in docs for name in typed_values(d.metadata)} - existing)
    return [
        Property(
            name=n,
            data_type=TYPED[n[-1]],
            tokenization=Tokenization.FIELD if n[-1] == "s" else None,
            index_filterable=True,
            index_searchable=False,
        )
        for n in names
    ]


def weaviate_filter(filter: Mapping[str, Condition] | None, existing: set[str]) -> Any:
    """A ragembed filter as a Weaviate Filter (None for no filter); raises Impossible when it
    can match nothing."""
    if not filter:
        return None
    clauses = []
    for key, condition in filter.items():
        options = key_options(key, condition, existing)
        if not options:
            raise Impossible(key)
        clauses.append(options[0] if len(options) == 1 else Filter.any_of(options))
    return clauses[0] if len(clauses) == 1 else Filter.all_of(clauses)


def key_options(key: str, condition: Condition, existing: set[str]) -> list[Any]:
    if isinstance(condition, Range):
        name = typed_name(key, "n")
        if name not in existing:
            return []
        prop = Filter.by_property(name)
        bounds = [
            *([prop.greater_than(condition.gt)] if condition.gt is not None else []),
            *([prop.greater_or_equal(condition.gte)] if condition.gte is not None else []),
            *([prop.less_than(condition.lt)] if condition.lt is not None else []),
            *([prop.less_or_equal(condition.lte)] if condition.lte is not None else []),
        ]
        # Weaviate tests each bound against any element of a number[] property, so on list-valued
        # metadata [1, 9] matches Range(gt=3, lt=5) (9 > 3 and 1 < 5), where the other stores
        # want one element within both bounds. Scalars behave the same everywhere (docs/weaviate.md).
        return [bounds[0] if len(bounds) == 1 else Filter.all_of(bounds)]
    wanted: dict[str, list[Any]] = {}
    for v in condition if isinstance(condition, (list, tuple)) else (condition,):
        kind = value_kind(v)
        if kind:
            wanted.setdefault(kind, []).append(float(v) if kind == "n" else v)
    return [
        Filter.by_property(typed_name(key, kind)).contains_any(values)
        for kind, values in wanted.items()
        if typed_name(key, kind) in existing
    ]
