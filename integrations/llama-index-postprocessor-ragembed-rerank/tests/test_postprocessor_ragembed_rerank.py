"""RagembedRerank inside real LlamaIndex pipelines, on SciFact text, with a real cross-encoder: the
bundled MiniLM with a seeded one-output head (no served package ships trained reranker weights;
ragembed's own tests train one). What is checked: the nodes come back scored by the cross-encoder
and ordered by it, in a query engine too, and a folder that is not a cross-encoder is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from llama_index.core import Document as LlamaDocument
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode
from llama_index.postprocessor.ragembed_rerank import RagembedRerank
from llama_index.retrievers.ragembed import RagembedRetriever

from ragembed import CrossEncoderReranker
from ragembed.embedders.models import DEFAULT_MODEL, resolve_model_name
from ragembed.errors import InvalidInputError, ModelLoadError

SCIFACT = Path(os.environ.get("RAGEMBED_SCIFACT", Path(__file__).resolve().parents[3] / "data" / "scifact"))
QUERY = "vitamin D deficiency and the risk of fractures"


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory) -> Path:
    from sentence_transformers.cross_encoder import CrossEncoder
    from transformers import set_seed

    folder = tmp_path_factory.mktemp("cross-encoder")
    set_seed(0)
    CrossEncoder(resolve_model_name(DEFAULT_MODEL), num_labels=1, max_length=256).save(str(folder))
    return folder


@pytest.fixture(scope="module")
def documents():
    if not (SCIFACT / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact not found at {SCIFACT}; set RAGEMBED_SCIFACT")
    with open(SCIFACT / "corpus.jsonl") as handle:
        records = [json.loads(line) for _, line in zip(range(40), handle)]
    return [
        LlamaDocument(id_=r["_id"], text=f"{r['title']} {r['text']}", metadata={"title": r["title"]}) for r in records
    ]


def test_nodes_come_back_scored_and_ordered_by_the_cross_encoder(cross_encoder_dir, documents):
    retriever = RagembedRetriever.from_documents(documents, strategy="dense", similarity_top_k=10)
    nodes = retriever.retrieve(QUERY)
    rerank = RagembedRerank(model=str(cross_encoder_dir), top_n=3, keep_retrieval_score=True)
    texts = {n.node.node_id: n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes}
    retrieval = {n.node.node_id: n.score for n in nodes}
    kept = rerank.postprocess_nodes(nodes, query_str=QUERY)
    reference = CrossEncoderReranker(str(cross_encoder_dir))
    expected = {i: float(s) for i, s in zip(texts, reference.score(QUERY, list(texts.values())))}
    assert [n.node.node_id for n in kept] == sorted(expected, key=lambda i: (-expected[i], i))[:3]
    for n in kept:
        assert n.score == pytest.approx(expected[n.node.node_id], abs=1e-5)
        assert n.node.metadata["retrieval_score"] == retrieval[n.node.node_id]


def test_a_query_engine_answers_from_the_reranked_nodes(cross_encoder_dir, documents):
    retriever = RagembedRetriever.from_documents(documents, strategy="dense", similarity_top_k=8)
    rerank = RagembedRerank(model=str(cross_encoder_dir), top_n=2)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM(), node_postprocessors=[rerank])
    response = engine.query(QUERY)
    direct = rerank.postprocess_nodes(retriever.retrieve(QUERY), query_str=QUERY)
    assert [n.node.node_id for n in response.source_nodes] == [n.node.node_id for n in direct]


def test_ragembeds_own_rerank_stage_through_the_retriever(cross_encoder_dir, documents):
    retriever = RagembedRetriever.from_documents(
        documents, strategy="dense>rerank:10", reranker=str(cross_encoder_dir), similarity_top_k=3
    )
    nodes = retriever.retrieve(QUERY)
    assert len(nodes) == 3 and nodes[0].score >= nodes[1].score >= nodes[2].score


def test_bad_input_is_refused(cross_encoder_dir):
    with pytest.raises(ModelLoadError, match="is a bi-encoder"):
        RagembedRerank(model=DEFAULT_MODEL)
    with pytest.raises(InvalidInputError, match="top_n"):
        RagembedRerank(model=str(cross_encoder_dir), top_n=0)
    rerank = RagembedRerank(model=str(cross_encoder_dir))
    with pytest.raises(InvalidInputError, match="needs the query"):
        rerank.postprocess_nodes([NodeWithScore(node=TextNode(text="x"), score=1.0)])
    assert rerank.postprocess_nodes([], query_str=QUERY) == []
