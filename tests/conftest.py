"""Shared fixtures: real models (loaded once per session) and real SciFact data."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

from ragembed.evaluation import load_beir
from ragembed.sources import read_jsonl_documents

REPO = Path(__file__).resolve().parents[1]
SCIFACT = Path(os.environ.get("RAGEMBED_SCIFACT", REPO / "data" / "scifact"))


@pytest.fixture(scope="session")
def scifact_dir() -> Path:
    if not (SCIFACT / "corpus.jsonl").is_file():
        pytest.skip(f"BEIR SciFact not found at {SCIFACT}; set RAGEMBED_SCIFACT to its folder")
    return SCIFACT


@pytest.fixture(scope="session")
def scifact_docs(scifact_dir):
    """The first 120 SciFact abstracts: real scientific text, small enough to encode in seconds."""
    docs = []
    for doc in read_jsonl_documents(scifact_dir / "corpus.jsonl"):
        docs.append(doc)
        if len(docs) == 120:
            return docs
    return docs


@pytest.fixture(scope="session")
def dense_embedder():
    from ragembed import DenseEmbedder

    return DenseEmbedder()


@pytest.fixture(scope="session")
def bm25_embedder():
    from ragembed import BM25Embedder

    return BM25Embedder()


@pytest.fixture(scope="session")
def colbert_embedder():
    pytest.importorskip("pylate", reason="ColBERT needs the ragembed[colbert] extra")
    from ragembed import ColBERTEmbedder

    return ColBERTEmbedder()


@pytest.fixture(scope="session")
def cross_encoder_dir(tmp_path_factory) -> Path:
    """A real cross-encoder folder: the bundled MiniLM with a seeded, untrained one-output head
    (no served package ships trained reranker weights; tests/test_rerank.py trains one). Its
    scores are not relevance, but they are a real model's, which is what the mechanics need."""
    from sentence_transformers.cross_encoder import CrossEncoder
    from transformers import set_seed

    from ragembed.embedders.models import DEFAULT_MODEL, quiet_loading, resolve_model_name

    folder = tmp_path_factory.mktemp("cross-encoder")
    set_seed(0)
    with quiet_loading():
        CrossEncoder(resolve_model_name(DEFAULT_MODEL), num_labels=1, max_length=256).save(str(folder))
    return folder


@pytest.fixture(scope="session")
def cross_encoder(cross_encoder_dir):
    from ragembed import CrossEncoderReranker

    return CrossEncoderReranker(str(cross_encoder_dir))


@pytest.fixture(scope="session")
def small_beir(scifact_dir, tmp_path_factory):
    """32 train queries, 8 test queries, their judged documents and 150 others."""
    folder = tmp_path_factory.mktemp("beir")
    train, test = load_beir(scifact_dir, "train"), load_beir(scifact_dir, "test")
    train_q, test_q = list(train.queries)[:32], list(test.queries)[:8]
    judged = {d for q in train_q for d in train.qrels[q]} | {d for q in test_q for d in test.qrels[q]}
    keep = judged | {d.id for d in train.corpus[:150]}
    with open(folder / "corpus.jsonl", "w") as f:
        for d in train.corpus:
            if d.id in keep:
                f.write(
                    json.dumps(
                        {
                            "_id": d.id,
                            "title": d.metadata.get("title", ""),
                            "text": d.text[len(d.metadata.get("title", "")) :].strip(),
                        }
                    )
                    + "\n"
                )
    with open(folder / "queries.jsonl", "w") as f:
        for q in train_q:
            f.write(json.dumps({"_id": q, "text": train.queries[q]}) + "\n")
        for q in test_q:
            f.write(json.dumps({"_id": q, "text": test.queries[q]}) + "\n")
    (folder / "qrels").mkdir()
    for split, data, qids in (("train", train, train_q), ("test", test, test_q)):
        lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q in qids for d, s in data.qrels[q].items()]
        (folder / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder
