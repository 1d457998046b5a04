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
    assert [n.node.ref_doc_id for n in nodes] == [h.id for h in hits]  # each node: its document's best passage
    assert [n.score for n in nodes] == pytest.approx([h.score for h in hits])
    assert nodes[0].node.text == hits[0].passage.text and nodes[0].node.metadata["title"] == hits[0].metadata["title"]
    assert hits[0].text[nodes[0].node.start_char_idx : nodes[0].node.end_char_idx] == nodes[0].node.text


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


HANDBOOK = (Path(__file__).resolve().parents[3] / "tests" / "data" / "handbook.md").read_text()
NEEDLE = "where are the zebrafish heart regeneration samples stored and who may move them"


def test_a_long_document_is_split_and_the_node_is_its_passage(embedder):
    docs = [LlamaDocument(id_="handbook.md", text=HANDBOOK), LlamaDocument(id_="note", text="Coffee on Fridays.")]
    retriever = RagembedRetriever.from_documents(docs, store="memory", embedder=embedder, similarity_top_k=2)
    assert retriever.retriever.chunking is not None and retriever.retriever.chunking.size == 128  # the default
    (top, _) = retriever.retrieve(NEEDLE)
    assert top.node.ref_doc_id == "handbook.md"
    assert top.node.source_node is not None and top.node.source_node.node_id == "handbook.md"
    assert "freezer B7" in top.node.text
    assert HANDBOOK[top.node.start_char_idx : top.node.end_char_idx] == top.node.text
    assert top.node.metadata["header_path"] == "/Laboratory handbook/Sample storage/"
    passages = RagembedRetriever(retriever.retriever, similarity_top_k=3, return_passages=True).retrieve(NEEDLE)
    assert [n.node.ref_doc_id for n in passages[:2]] == ["handbook.md", "handbook.md"]  # several from one document
    assert passages[0].node.node_id == top.node.node_id


def test_nodes_a_parser_made_are_indexed_as_they_are(embedder):
    from llama_index.core.node_parser import SentenceSplitter

    nodes = SentenceSplitter(chunk_size=200, chunk_overlap=0).get_nodes_from_documents(
        [LlamaDocument(id_="handbook.md", text=HANDBOOK)]
    )
    retriever = RagembedRetriever.from_documents(nodes, store="memory", embedder=embedder, similarity_top_k=1)
    assert retriever.retriever.chunking is None and retriever.retriever.count() == len(nodes)
    (top,) = retriever.retrieve(NEEDLE)
    assert top.node.node_id in {n.node_id for n in nodes} and top.node.ref_doc_id == "handbook.md"
    assert "freezer B7" in top.node.text


def test_a_node_without_text_is_refused_and_nothing_is_indexed(embedder):
    from llama_index.core.schema import TextNode

    with pytest.raises(InvalidInputError, match=r"node 'empty' .* has no text"):
        RagembedRetriever.from_documents(
            [TextNode(id_="fine", text="some text"), TextNode(id_="empty", text="  ")],
            store="memory",
            embedder=embedder,
        )
