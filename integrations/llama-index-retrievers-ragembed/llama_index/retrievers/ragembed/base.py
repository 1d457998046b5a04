"""ragembed for LlamaIndex: a retriever over any ragembed store and strategy (ragembed's dense
embedders as a LlamaIndex embedding model are llama-index-embeddings-ragembed's).

    retriever = RagembedRetriever.from_documents(documents, store="qdrant-edge:./index",
                                                 strategy="hybrid", similarity_top_k=5)
    engine = RetrieverQueryEngine.from_args(retriever, llm=llm)

Whole LlamaIndex Documents are split into passages that fit the model's window (ragembed.passages),
and each retrieved node is a document's best passage: its text, `start_char_idx`/`end_char_idx` in
the document, `header_path` for Markdown, and the SOURCE relationship to the document
(`node.ref_doc_id`). Nodes a LlamaIndex node parser already made are indexed as they are (each
one record, its `ref_doc_id` kept). `return_passages=True` returns the top passages instead of
documents, several from one document where they score so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from llama_index.core.callbacks.base import CallbackManager
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import (
    BaseNode,
    MetadataMode,
    NodeRelationship,
    NodeWithScore,
    QueryBundle,
    RelatedNodeInfo,
    TextNode,
)
from llama_index.core.schema import Document as LlamaDocument
from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilters

from ragembed import Document, Hit, Range, Retriever
from ragembed.errors import InvalidInputError
from ragembed.search.filters import Condition, Filter, combine

# The metadata key that keeps the document of a node indexed as it is (its ref_doc_id).
REF_DOC_ID = "ref_doc_id"
RANGE_BOUNDS = {FilterOperator.GT: "gt", FilterOperator.GTE: "gte", FilterOperator.LT: "lt", FilterOperator.LTE: "lte"}


class RagembedRetriever(BaseRetriever):
    """A LlamaIndex retriever that searches a ragembed `Retriever` (any store, any strategy)."""

    def __init__(
        self,
        retriever: Retriever,
        *,
        similarity_top_k: int = 10,
        strategy: str | None = None,
        filters: MetadataFilters | None = None,
        return_passages: bool = False,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        if not isinstance(retriever, Retriever):
            raise InvalidInputError(f"RagembedRetriever wraps a ragembed Retriever, got {type(retriever).__name__}")
        self.retriever = retriever
        self.similarity_top_k = similarity_top_k
        self.strategy = strategy
        self.filter = to_ragembed_filter(filters)
        self.return_passages = return_passages
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @classmethod
    def from_documents(
        cls,
        documents: Sequence[BaseNode],
        *,
        store: Any = "memory",
        strategy: str | Sequence[str] = "dense",
        collection: str = "default",
        **options: Any,
    ) -> RagembedRetriever:
        """Index LlamaIndex documents or nodes into a ragembed store and retrieve from it.
        Keyword options other than the retriever's go to ragembed's Retriever (embedder=...,
        passages=..., chunk_size=...). Whole Documents are split into passages as ragembed's
        default says (passages=False: whole); nodes a node parser made are taken as they are."""
        keys = ("similarity_top_k", "filters", "return_passages", "callback_manager", "verbose")
        own = {k: options.pop(k) for k in keys if k in options}
        settings_given = any(k in options for k in ("passages", "chunk_size", "chunk_overlap"))
        if not settings_given and not all(isinstance(node, LlamaDocument) for node in documents):
            options["passages"] = False  # a node parser's nodes are the passages already
        retriever = Retriever(store, strategy, collection=collection, **options)
        add_nodes(retriever, documents)
        return cls(retriever, **own)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        search = self.retriever.search_passages if self.return_passages else self.retriever.search
        hits = search(query_bundle.query_str, k=self.similarity_top_k, filter=self.filter, strategy=self.strategy)
        return [node_with_score(h) for h in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query, k = query_bundle.query_str, self.similarity_top_k
        if self.return_passages:  # the passages' scores are computed client-side: a worker thread
            hits = await asyncio.to_thread(
                self.retriever.search_passages, query, k, filter=self.filter, strategy=self.strategy
            )
        else:
            hits = await self.retriever.asearch(query, k, filter=self.filter, strategy=self.strategy)
        return [node_with_score(h) for h in hits]


def node_with_score(hit: Hit) -> NodeWithScore:
    """A hit as a LlamaIndex node: its best passage (related to its document) where it has one,
    else the stored text (related to the document it came from, if it was a parser's node)."""
    metadata = {k: v for k, v in hit.metadata.items() if k != REF_DOC_ID}
    source = hit.metadata.get(REF_DOC_ID)
    passage = hit.passage
    if passage is None:
        node = TextNode(id_=hit.id, text=hit.text, metadata=metadata)
    else:
        if passage.headings:
            metadata["header_path"] = "/" + "/".join(passage.headings) + "/"  # MarkdownNodeParser's key
        node = TextNode(
            id_=f"{hit.id}#{passage.start}-{passage.end}",
            text=passage.text,
            metadata=metadata,
            start_char_idx=passage.start,
            end_char_idx=passage.end,
        )
        source = hit.id
    if source is not None:
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=str(source))
    return NodeWithScore(node=node, score=hit.score)


def add_nodes(retriever: Retriever, nodes: Sequence[BaseNode]) -> int:
    """Embed and store LlamaIndex documents or nodes (id = node id, text = node content, metadata =
    the node's flat metadata values; others are left out, as ragembed metadata is flat). A node of
    a document keeps that document's id (metadata "ref_doc_id"), to relate the hits back to it."""
    documents = []
    for node in nodes:
        text = node.get_content(metadata_mode=MetadataMode.NONE)
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError(
                f"LlamaIndex node {node.node_id!r} ({type(node).__name__}) has no text; ragembed embeds text: "
                "leave the node out, or give it text. Nothing was indexed"
            )
        metadata = {k: v for k, v in node.metadata.items() if flat(v)}
        if not isinstance(node, LlamaDocument) and node.ref_doc_id is not None:
            metadata[REF_DOC_ID] = node.ref_doc_id
        documents.append(Document(node.node_id, text, metadata))
    return retriever.index(documents)


def flat(value: Any) -> bool:
    scalar = (str, int, float, bool, type(None))
    return isinstance(value, scalar) or (isinstance(value, (list, tuple)) and all(isinstance(v, scalar) for v in value))


def to_ragembed_filter(filters: MetadataFilters | None) -> Filter | None:
    """LlamaIndex MetadataFilters (AND of ==, in, >, >=, <, <=, contains) as a ragembed filter."""
    if filters is None or not filters.filters:
        return None
    if filters.condition is FilterCondition.NOT:
        # A NOT of one condition would otherwise come back as that condition: exactly what was excluded.
        raise InvalidInputError("ragembed filters cannot negate (NOT); filter on the values you want instead")
    if filters.condition not in (None, FilterCondition.AND) and len(filters.filters) > 1:
        raise InvalidInputError(
            f"ragembed filters combine conditions with AND; got {filters.condition.value.upper()}: "
            "split the query, or filter on one key with 'in'"
        )
    result: dict[str, Condition] = {}
    for f in filters.filters:
        if isinstance(f, MetadataFilters):
            raise InvalidInputError("nested MetadataFilters are not supported; flatten them into one AND list")
        condition: Any  # combine() checks the value LlamaIndex let through
        if f.operator in (FilterOperator.EQ, FilterOperator.CONTAINS):
            condition = f.value
        elif f.operator in (FilterOperator.IN, FilterOperator.ANY):
            if not isinstance(f.value, (list, tuple)):
                raise InvalidInputError(
                    f"filter {f.key!r}: {f.operator.value!r} takes a list of values, got {f.value!r}; "
                    f"write [{f.value!r}], or use '==' for one value"
                )
            condition = list(f.value)
        elif f.operator in RANGE_BOUNDS:
            bound: dict[str, Any] = {RANGE_BOUNDS[f.operator]: f.value}  # Range checks it is a number
            condition = Range(**bound)
        else:
            raise InvalidInputError(
                f"filter operator {f.operator.value!r} on {f.key!r} is not supported; ragembed filters "
                "use ==, in, any, contains, >, >=, <, <="
            )
        combine(result, f.key, condition)
    return result
