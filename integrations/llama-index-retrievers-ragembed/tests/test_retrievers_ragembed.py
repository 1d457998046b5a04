"""RagembedRetriever inside real LlamaIndex pipelines, on SciFact text with
the bundled model. No LLM runs offline here, so the query engine answers with llama-index-core's
MockLLM; what is checked is retrieval: the engine's source nodes are the retriever's hits."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from llama_index.core import Document as LlamaDocument
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters
from llama_index.retrievers.ragembed import RagembedRetriever, to_ragembed_filter

from ragembed import DenseEmbedder, Range
from ragembed.errors import InvalidInputError

SCIFACT = Path(os.environ.get("RAGEMBED_SCIFACT", Path(__file__).resolve().parents[3] / "data" / "scifact"))


@pytest.fixture(scope="module")
def documents():
    if not (SCIFACT / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact not found at {SCIFACT}; set RAGEMBED_SCIFACT")
    docs = []
    with open(SCIFACT / "corpus.jsonl") as handle:
        for number, line in zip(range(60), handle):
            record = json.loads(line)
            docs.append(
                LlamaDocument(
                    id_=record["_id"],
                    text=f"{record['title']} {record['text']}",
                    metadata={"title": record["title"], "half": number % 2, "rank": number},
                )
            )
    return docs


@pytest.fixture(scope="module")
def embedder():
    return DenseEmbedder()


@pytest.fixture(scope="module")
def retriever(documents, embedder):
    return RagembedRetriever.from_documents(
        documents, store="memory", strategy=["dense", "binary"], embedder=embedder, similarity_top_k=5
    )


def test_is_a_llama_index_retriever_returning_the_ragembed_ranking(retriever, embedder):
    assert isinstance(retriever, BaseRetriever)
    nodes = retriever.retrieve("vitamin D and bone health")
    hits = retriever.retriever.search("vitamin D and bone health", k=5)
    assert [n.node.node_id for n in nodes] == [h.id for h in hits]
    assert [n.score for n in nodes] == pytest.approx([h.score for h in hits])
    assert nodes[0].node.text == hits[0].text and nodes[0].node.metadata["title"] == hits[0].metadata["title"]


def test_query_engine_cites_the_retrievers_top_nodes_in_order(retriever):
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
    response = engine.query("tumour growth in mice")
    expected = [n.node.node_id for n in retriever.retrieve("tumour growth in mice")]
    assert [n.node.node_id for n in response.source_nodes] == expected
    assert response.response  # MockLLM echoes a prompt built from those nodes


async def test_async_retrieval_matches_sync(retriever):
    query = "insulin resistance in obesity"
    nodes = await retriever.aretrieve(query)
    assert [n.node.node_id for n in nodes] == [n.node.node_id for n in retriever.retrieve(query)]


def test_strategy_and_filters(documents, embedder):
    filters = MetadataFilters(
        filters=[
            MetadataFilter(key="half", value=1, operator=FilterOperator.EQ),
            MetadataFilter(key="rank", value=10, operator=FilterOperator.GTE),
            MetadataFilter(key="rank", value=40, operator=FilterOperator.LT),
        ]
    )
    filtered = RagembedRetriever.from_documents(
        documents, strategy="binary", embedder=embedder, similarity_top_k=30, filters=filters
    )
    nodes = filtered.retrieve("cancer treatment")
    assert nodes and all(n.node.metadata["half"] == 1 and 10 <= n.node.metadata["rank"] < 40 for n in nodes)
    assert len(nodes) == 15  # every document the filter allows


def test_filter_translation_and_its_refusals():
    both = MetadataFilters(
        filters=[
            MetadataFilter(key="year", value=2019, operator=FilterOperator.GT),
            MetadataFilter(key="lang", value=["en", "de"], operator=FilterOperator.IN),
        ]
    )
    assert to_ragembed_filter(both) == {"year": Range(gt=2019), "lang": ["en", "de"]}
    with pytest.raises(InvalidInputError, match="'!='"):
        to_ragembed_filter(MetadataFilters(filters=[MetadataFilter(key="a", value=1, operator=FilterOperator.NE)]))
    with pytest.raises(InvalidInputError, match="AND"):
        to_ragembed_filter(
            MetadataFilters(
                filters=[MetadataFilter(key="a", value=1), MetadataFilter(key="b", value=2)],
                condition=FilterCondition.OR,
            )
        )
    with pytest.raises(InvalidInputError, match="ragembed Retriever"):
        RagembedRetriever("not a retriever")


def test_the_embedding_model_is_still_importable_from_here_for_one_release():
    from llama_index.embeddings.ragembed import RagembedEmbedding

    with pytest.warns(DeprecationWarning, match="llama-index-embeddings-ragembed"):
        from llama_index.retrievers.ragembed import RagembedEmbedding as old

    assert old is RagembedEmbedding
