from llama_index.postprocessor.ragembed_rerank.base import RagembedRerank

__all__ = ["RagembedRerank"]
