"""RagembedEmbedding inside a real LlamaIndex index, on SciFact text, against ragembed's own
exact ranking."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from llama_index.core import Document as LlamaDocument
from llama_index.core import VectorStoreIndex
from llama_index.embeddings.ragembed import RagembedEmbedding

from ragembed import DenseEmbedder, Document, Retriever

SCIFACT = Path(os.environ.get("RAGEMBED_SCIFACT", Path(__file__).resolve().parents[3] / "data" / "scifact"))


@pytest.fixture(scope="module")
def documents():
    if not (SCIFACT / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact not found at {SCIFACT}; set RAGEMBED_SCIFACT")
    with open(SCIFACT / "corpus.jsonl") as handle:
        records = [json.loads(line) for _, line in zip(range(30), handle)]
    return [
        LlamaDocument(id_=r["_id"], text=f"{r['title']} {r['text']}", metadata={"title": r["title"]}) for r in records
    ]


@pytest.fixture(scope="module")
def embedder():
    return DenseEmbedder()


def test_ragembed_embedding_serves_a_vector_store_index(documents, embedder):
    embed_model = RagembedEmbedding(embedder=embedder)
    docs = [d.model_copy() for d in documents[:30]]
    for d in docs:  # embed the text alone (LlamaIndex would prepend the metadata), one node per document
        d.excluded_embed_metadata_keys = list(d.metadata)
    index = VectorStoreIndex.from_documents(docs, embed_model=embed_model, transformations=[])
    nodes = index.as_retriever(similarity_top_k=5).retrieve("DNA repair mechanisms")
    # LlamaIndex's own index ranks with ragembed's vectors as ragembed's exact store does.
    reference = Retriever("memory", "dense", embedder=embedder, passages=False)  # one node per document
    reference.index([Document(d.doc_id, d.text) for d in docs])
    assert [n.node.ref_doc_id for n in nodes] == [h.id for h in reference.search("DNA repair mechanisms", k=5)]
    assert len(embed_model.get_query_embedding("a query")) == 384
