"""ragembed: embed, store, retrieve and evaluate with every kind of embedding that matters."""

import importlib
from typing import Any

from ragembed.embedders.base import Embedder
from ragembed.embedders.cache import EmbeddingCache
from ragembed.embedders.dense import DenseEmbedder
from ragembed.embedders.matryoshka import MatryoshkaEmbedder, truncate
from ragembed.errors import (
    DimensionMismatchError,
    EncoderMismatchError,
    InvalidInputError,
    MissingDependencyError,
    ModelLoadError,
    PartialWriteError,
    RagembedError,
    SchemaMismatchError,
    StoreError,
    TruncationWarning,
    UnsupportedStrategyError,
)
from ragembed.quantization import Int8Calibration, quantize_binary, quantize_int8
from ragembed.rerank import CrossEncoderReranker
from ragembed.retriever import Retriever
from ragembed.search.filters import Range
from ragembed.search.plan import Fusion, KeywordSearch, Rerank, Rescore, VectorSearch
from ragembed.search.schema import Schema, VectorField
from ragembed.similarity import similarity
from ragembed.stores.base import VectorStore
from ragembed.stores.memory import MemoryStore
from ragembed.stores.uri import open_store
from ragembed.strategies import (
    BM25,
    ColBERT,
    Dense,
    Hybrid,
    Keyword,
    KeywordHybrid,
    Matryoshka,
    Quantized,
    Reranked,
    Strategy,
    Using,
    parse_strategy,
)
from ragembed.types import (
    Datatype,
    DenseEmbeddings,
    Document,
    EmbeddingKind,
    Hit,
    MultiVectorEmbeddings,
    Precision,
    SparseEmbeddings,
    SparsePassageEmbeddings,
)

# Classes with optional dependencies load on first use, so `import ragembed` works without them.
_LAZY = {
    "BM25Embedder": "ragembed.embedders.sparse",
    "ColBERTEmbedder": "ragembed.embedders.colbert",
    "QdrantStore": "ragembed.stores.qdrant.client",
    "QdrantEdgeStore": "ragembed.stores.qdrant.edge",
    "WeaviateStore": "ragembed.stores.weaviate.store",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ragembed' has no attribute {name!r}")


__version__ = "0.1.0"
__all__ = [
    "BM25",
    "BM25Embedder",
    "ColBERT",
    "ColBERTEmbedder",
    "CrossEncoderReranker",
    "Datatype",
    "Dense",
    "DenseEmbedder",
    "DenseEmbeddings",
    "DimensionMismatchError",
    "Document",
    "Embedder",
    "EmbeddingCache",
    "EmbeddingKind",
    "EncoderMismatchError",
    "Fusion",
    "Hit",
    "Hybrid",
    "Int8Calibration",
    "InvalidInputError",
    "Keyword",
    "KeywordHybrid",
    "KeywordSearch",
    "Matryoshka",
    "MatryoshkaEmbedder",
    "MemoryStore",
    "MissingDependencyError",
    "ModelLoadError",
    "MultiVectorEmbeddings",
    "PartialWriteError",
    "Precision",
    "QdrantEdgeStore",
    "QdrantStore",
    "Quantized",
    "RagembedError",
    "Range",
    "Rerank",
    "Reranked",
    "Rescore",
    "Retriever",
    "Schema",
    "SchemaMismatchError",
    "SparseEmbeddings",
    "SparsePassageEmbeddings",
    "StoreError",
    "Strategy",
    "TruncationWarning",
    "UnsupportedStrategyError",
    "Using",
    "VectorField",
    "VectorSearch",
    "VectorStore",
    "WeaviateStore",
    "open_store",
    "parse_strategy",
    "quantize_binary",
    "quantize_int8",
    "similarity",
    "truncate",
]
