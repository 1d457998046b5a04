"""What a store can do, declared once per store: the Retriever, `check_plan` and the contract
suite read it, so a plan a store cannot honour is refused (naming the store, what it lacks and
the alternative) instead of being answered some other way."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ragembed.types import Datatype, EmbeddingKind

# Metadata keys every store can filter on: Qdrant reads '.' and '[' in a key as a JSON path,
# Weaviate names a property per key (letters, digits and '_', at most 200 with ragembed's prefix).
PORTABLE_FILTER_KEY = re.compile(r"^[A-Za-z0-9_]{1,200}$")
PORTABLE_FILTER_KEYS = "letters, digits and '_' (at most 200)"


@dataclass(frozen=True)
class FilterKeys:
    """The metadata keys a store's filters can name, and how to say so."""

    pattern: re.Pattern[str]
    description: str

    def accepts(self, key: str) -> bool:
        return self.pattern.fullmatch(key) is not None


PORTABLE = FilterKeys(PORTABLE_FILTER_KEY, PORTABLE_FILTER_KEYS)
ANY_KEY = FilterKeys(re.compile(r".+", re.DOTALL), "any non-empty key")


@dataclass(frozen=True)
class Capabilities:
    """kinds: the embedding kinds the store holds.
    keyword_search: it answers KeywordSearch (the engine's own BM25 over the document text).
    native_async: `asearch` awaits the engine's async client (else a worker thread runs `search`).
    native_quantization: the engine quantizes and scans int8/binary fields itself (approximate);
        else they are scored client-side, exactly as the memory store does.
    quantized_without_rescore: a quantized field can be searched alone, without rescoring with
        the float32 originals (Weaviate always rescores its compressed index).
    asymmetric_binary: binary fields are scored with the query's own values against the
        documents' bits (else bits against bits, as Hamming search).
    datatypes: how it can keep multi-vector fields (types.Datatype).
    quantized_multivectors: it keeps an int8/binary index of a multi-vector field beside the
        float32 token vectors (MaxSim on the codes, the best candidates rescored with the originals).
    sparse_passages: it scores a per-passage sparse field (a document by its best passage's BM25).
    filter_keys: the metadata keys its filters can name."""

    kinds: frozenset[EmbeddingKind] = frozenset(EmbeddingKind)
    keyword_search: bool = False
    native_async: bool = False
    native_quantization: bool = False
    quantized_without_rescore: bool = True
    asymmetric_binary: bool = True
    datatypes: frozenset[Datatype] = frozenset({Datatype.FLOAT32})
    quantized_multivectors: bool = True
    sparse_passages: bool = True
    filter_keys: FilterKeys = ANY_KEY
