"""ragembed's dense embedders (the bundled all-MiniLM-L6-v2 by default, offline, with ragembed's
embeddings cache) as a LlamaIndex embedding model, for LlamaIndex's own indexes.

    index = VectorStoreIndex.from_documents(documents, embed_model=RagembedEmbedding())
"""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr

from ragembed import DenseEmbedder
from ragembed.types import DenseEmbeddings, narrow


class RagembedEmbedding(BaseEmbedding):
    """ragembed's DenseEmbedder (bundled all-MiniLM-L6-v2 by default, with its embeddings cache)
    as a LlamaIndex embedding model, for LlamaIndex's own indexes."""

    _embedder: DenseEmbedder = PrivateAttr()

    def __init__(
        self,
        model: str | None = None,
        *,
        embedder: DenseEmbedder | None = None,
        embed_batch_size: int = 32,
        **kwargs: Any,
    ) -> None:
        embedder = embedder or DenseEmbedder(model)
        super().__init__(model_name=embedder.model_name, embed_batch_size=embed_batch_size, **kwargs)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "RagembedEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        vector: list[float] = narrow(self._embedder.embed_queries([query]), DenseEmbeddings).data[0].tolist()
        return vector

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)  # the model runs in a worker

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = narrow(self._embedder.embed_documents(texts), DenseEmbeddings).data.tolist()
        return vectors
