"""Shared fixtures: real models (loaded once per session) and real SciFact data."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

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
