from llama_index.retrievers.ragembed.base import RagembedEmbedding, RagembedRetriever, to_ragembed_filter

__all__ = ["RagembedEmbedding", "RagembedRetriever", "to_ragembed_filter"]
