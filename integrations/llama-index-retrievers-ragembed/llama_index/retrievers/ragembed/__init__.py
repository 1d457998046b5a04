import warnings
from typing import Any

from llama_index.retrievers.ragembed.base import RagembedRetriever, to_ragembed_filter

__all__ = ["RagembedRetriever", "to_ragembed_filter"]


def __getattr__(name: str) -> Any:
    # One component kind per package (LlamaIndex's convention): the embedding model moved to
    # llama-index-embeddings-ragembed. This re-export stays for one release.
    if name == "RagembedEmbedding":
        warnings.warn(
            "RagembedEmbedding moved to llama-index-embeddings-ragembed: "
            "from llama_index.embeddings.ragembed import RagembedEmbedding",
            DeprecationWarning,
            stacklevel=2,
        )
        from llama_index.embeddings.ragembed import RagembedEmbedding

        return RagembedEmbedding
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
