"""ragembed: embed, store, retrieve and evaluate with every kind of embedding that matters."""

from ragembed.embedders.base import Embedder
from ragembed.embedders.cache import EmbeddingCache
from ragembed.embedders.dense import DenseEmbedder, default_model_path
from ragembed.embedders.matryoshka import MatryoshkaEmbedder, truncate
from ragembed.embedders.quantization import Int8Calibration, quantize_binary, quantize_int8
from ragembed.errors import (
    DimensionMismatchError,
    InvalidInputError,
    MissingDependencyError,
    ModelLoadError,
    RagembedError,
    SchemaMismatchError,
    StoreError,
    UnsupportedStrategyError,
)
from ragembed.retriever import Retriever
from ragembed.similarity import similarity
from ragembed.stores.base import Fusion, Schema, VectorField, VectorSearch, VectorStore
from ragembed.stores.filters import Range
from ragembed.stores.memory import MemoryStore
from ragembed.stores.uri import open_store
from ragembed.strategies import BM25, ColBERT, Dense, Hybrid, Matryoshka, Quantized, Strategy, parse_strategy
from ragembed.types import (
    DenseEmbeddings,
    Document,
    EmbeddingKind,
    Hit,
    MultiVectorEmbeddings,
    Precision,
    SparseEmbeddings,
)


def __getattr__(name: str):
    # Embedders with optional dependencies load on first use, so `import ragembed` works without them.
    if name == "BM25Embedder":
        from ragembed.embedders.sparse import BM25Embedder
        return BM25Embedder
    if name == "ColBERTEmbedder":
        from ragembed.embedders.colbert import ColBERTEmbedder
        return ColBERTEmbedder
    raise AttributeError(f"module 'ragembed' has no attribute {name!r}")


__version__ = "0.1.0"
__all__ = [
    "BM25", "BM25Embedder", "ColBERT", "ColBERTEmbedder", "Dense", "DenseEmbedder", "DenseEmbeddings",
    "DimensionMismatchError", "Document", "Embedder", "EmbeddingCache", "EmbeddingKind", "Fusion", "Hit",
    "Hybrid", "Int8Calibration", "InvalidInputError", "Matryoshka", "MatryoshkaEmbedder", "MemoryStore",
    "MissingDependencyError", "ModelLoadError", "MultiVectorEmbeddings", "Precision", "Quantized",
    "RagembedError", "Range", "Retriever", "Schema", "SchemaMismatchError", "SparseEmbeddings",
    "StoreError", "Strategy", "UnsupportedStrategyError", "VectorField", "VectorSearch", "VectorStore",
    "default_model_path", "open_store", "parse_strategy", "quantize_binary", "quantize_int8",
    "similarity", "truncate",
]
