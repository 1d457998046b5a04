"""ragembed's reranker for LlamaIndex: a cross-encoder that `ragembed finetune reranker` trains,
as a node postprocessor in any LlamaIndex pipeline (after any retriever, ragembed's or not).

    rerank = RagembedRerank(model="runs/reranker", top_n=5)
    engine = RetrieverQueryEngine.from_args(retriever, node_postprocessors=[rerank], llm=llm)

Each node is scored by ragembed's CrossEncoderReranker on the text it embeds (metadata as
MetadataMode.EMBED shows it, as LlamaIndex's SentenceTransformerRerank reads it); the best `top_n`
come back with the cross-encoder's score, ties by node id. To rerank inside ragembed instead
(every store, a document scored by its best passage), give the Retriever the reranker and search
a '>rerank' strategy: RagembedRetriever.from_documents(..., strategy="hybrid>rerank",
reranker="runs/reranker").
"""

from __future__ import annotations

from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from ragembed import CrossEncoderReranker
from ragembed.errors import InvalidInputError


class RagembedRerank(BaseNodePostprocessor):
    """Rerank nodes with a cross-encoder folder (ragembed.CrossEncoderReranker), keeping `top_n`."""

    model: str = Field(
        description="Folder (or hub name) of a cross-encoder, e.g. one `ragembed finetune reranker` saved."
    )
    top_n: int = Field(default=5, description="Number of nodes to return, best first.")
    keep_retrieval_score: bool = Field(
        default=False, description="Keep each node's retrieval score in its metadata as 'retrieval_score'."
    )
    _reranker: CrossEncoderReranker = PrivateAttr()

    def __init__(
        self, model: str | CrossEncoderReranker, top_n: int = 5, keep_retrieval_score: bool = False, **kwargs: Any
    ) -> None:
        if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
            raise InvalidInputError(f"top_n must be a whole number >= 1, got {top_n!r}")
        reranker = model if isinstance(model, CrossEncoderReranker) else CrossEncoderReranker(model)
        # pydantic's BaseModel.__init__ takes the fields; mypy reads BaseNodePostprocessor's signature
        super().__init__(model=reranker.name, top_n=top_n, keep_retrieval_score=keep_retrieval_score, **kwargs)  # type: ignore[call-arg]
        self._reranker = reranker

    @classmethod
    def class_name(cls) -> str:
        return "RagembedRerank"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            raise InvalidInputError("RagembedRerank needs the query: call postprocess_nodes(nodes, query_str=...)")
        if not nodes:
            return []
        texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
        with self.callback_manager.event(
            CBEventType.RERANKING,
            payload={
                EventPayload.NODES: nodes,
                EventPayload.MODEL_NAME: self.model,
                EventPayload.QUERY_STR: query_bundle.query_str,
                EventPayload.TOP_K: self.top_n,
            },
        ) as event:
            scores = self._reranker.score(query_bundle.query_str, texts)
            for node, score in zip(nodes, scores):
                if self.keep_retrieval_score:
                    node.node.metadata["retrieval_score"] = node.score
                node.score = float(score)
            kept = sorted(nodes, key=lambda n: (-(n.score or 0.0), n.node.node_id))[: self.top_n]
            event.on_end(payload={EventPayload.NODES: kept})
        return kept
