"""A LlamaIndex RAG app on ragembed: RagembedRetriever (hybrid search in the embedded Qdrant
engine) answers questions over SciFact abstracts.

    .venv/bin/python examples/llamaindex_rag.py "Does vitamin D prevent fractures?"

The generator is whatever you configure:
  OPENAI_BASE_URL (+ OPENAI_API_KEY, RAG_MODEL)  any OpenAI-compatible chat endpoint
  OLLAMA_HOST (+ RAG_MODEL, default llama3.2)    a local Ollama server
  neither                                         an extractive answer: the sentences of the top
                                                  passages that share the most words with the question
"""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

import httpx
from _data import scifact_slice
from llama_index.core import Document as LlamaDocument
from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.retrievers.ragembed import RagembedRetriever


class ChatEndpoint(CustomLLM):
    """An OpenAI-compatible /chat/completions endpoint, or Ollama's /api/chat."""

    url: str
    model: str
    api_key: str = ""
    ollama: bool = False

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        messages = [{"role": "user", "content": prompt}]
        if self.ollama:
            reply = httpx.post(
                f"{self.url}/api/chat", json={"model": self.model, "messages": messages, "stream": False}, timeout=120
            )
            reply.raise_for_status()
            return CompletionResponse(text=reply.json()["message"]["content"])
        reply = httpx.post(
            f"{self.url}/chat/completions",
            json={"model": self.model, "messages": messages},
            headers={"Authorization": f"Bearer {self.api_key}"} if self.api_key else {},
            timeout=120,
        )
        reply.raise_for_status()
        return CompletionResponse(text=reply.json()["choices"][0]["message"]["content"])

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        yield self.complete(prompt)


def configured_llm() -> ChatEndpoint | None:
    if os.environ.get("OPENAI_BASE_URL"):
        return ChatEndpoint(
            url=os.environ["OPENAI_BASE_URL"].rstrip("/"),
            model=os.environ.get("RAG_MODEL", "gpt-4o-mini"),
            api_key=os.environ.get("OPENAI_API_KEY", ""),
        )
    if os.environ.get("OLLAMA_HOST"):
        host = os.environ["OLLAMA_HOST"]
        return ChatEndpoint(
            url=(host if host.startswith("http") else f"http://{host}").rstrip("/"),
            model=os.environ.get("RAG_MODEL", "llama3.2"),
            ollama=True,
        )
    return None


def extractive_answer(question: str, nodes, sentences: int = 2) -> str:
    words = set(re.findall(r"\w+", question.lower()))
    candidates = [s for n in nodes for s in re.split(r"(?<=[.!?])\s+", n.node.get_content())]
    best = sorted(candidates, key=lambda s: -len(words & set(re.findall(r"\w+", s.lower()))))[:sentences]
    return " ".join(best)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("question", nargs="?", default="Does vitamin D supplementation prevent fractures?")
    parser.add_argument("--docs", type=int, default=1000)
    args = parser.parse_args()
    docs, _, _ = scifact_slice(args.docs, 0)
    retriever = RagembedRetriever.from_documents(
        [LlamaDocument(id_=d.id, text=d.text, metadata=dict(d.metadata)) for d in docs],
        store="qdrant-edge:./example-index",
        strategy="hybrid",
        collection="llamaindex-rag",
        similarity_top_k=3,
    )
    llm = configured_llm()
    if llm is None:
        nodes = retriever.retrieve(args.question)
        answer, sources = extractive_answer(args.question, nodes), nodes
        print("(no generator configured: extractive answer; set OPENAI_BASE_URL or OLLAMA_HOST for an LLM)")
    else:
        response = RetrieverQueryEngine.from_args(retriever, llm=llm).query(args.question)
        answer, sources = str(response), response.source_nodes
    print(f"Q: {args.question}\nA: {answer}\n\nsources:")
    for n in sources:
        print(f"  {n.node.node_id}  {n.score:.4f}  {n.node.metadata.get('title', '')[:80]}")
    retriever.retriever.close()


if __name__ == "__main__":
    main()
