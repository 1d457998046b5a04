from llama_index.embeddings.ragembed.base import RagembedEmbedding

__all__ = ["RagembedEmbedding"]
