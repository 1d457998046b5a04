"""No silent truncation: indexing says how many documents a model's window cut, and by how much
(Python: a TruncationWarning per call and embedder; the CLI: a note on stderr)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

from ragembed import Document, MemoryStore, Retriever, TruncationWarning

SECTION = "The lab keeps its samples in labelled racks and logs every move in the register. "
HANDBOOK = " ".join(f"Section {i}. " + SECTION * 12 for i in range(12))  # about 2,800 words
NOTES = [Document(f"note-{i}", f"Short note number {i} about the bees.") for i in range(3)]


def indexed_warnings(retriever: Retriever, docs: list[Document]) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        retriever.index(docs)
    return [str(w.message) for w in caught if issubclass(w.category, TruncationWarning)]


def test_a_document_longer_than_the_window_is_reported_on_every_call(dense_embedder):
    retriever = Retriever(MemoryStore(), "dense", embedder=dense_embedder, passages=False)
    tokens = len(dense_embedder.model.tokenizer(HANDBOOK)["input_ids"])
    assert tokens > 2000
    docs = [Document("handbook.md", HANDBOOK), *NOTES]
    (said,) = indexed_warnings(retriever, docs)
    assert said.startswith("1 of 4 texts are longer than DenseEmbedder(")
    assert f"window of 256 word pieces (the longest has {tokens})" in said
    assert len(indexed_warnings(retriever, docs)) == 1  # again on the next call, not once per process
    assert indexed_warnings(retriever, NOTES) == []  # nothing cut, nothing said


def test_bm25_sees_the_whole_text_and_says_nothing(bm25_embedder):
    retriever = Retriever(MemoryStore(), "bm25", sparse_embedder=bm25_embedder)
    assert indexed_warnings(retriever, [Document("handbook.md", HANDBOOK + " zebrafish"), *NOTES]) == []
    assert retriever.search("zebrafish", k=1)[0].id == "handbook.md"  # its last word was indexed


@pytest.mark.colbert
def test_colbert_reports_its_own_window(colbert_embedder):
    retriever = Retriever(MemoryStore(), "colbert", multivector_embedder=colbert_embedder, passages=False)
    (said,) = indexed_warnings(retriever, [Document("handbook.md", HANDBOOK), *NOTES])
    assert said.startswith("1 of 4 texts are longer than ColBERTEmbedder(") and "window of 180 word pieces" in said


def test_the_cli_notes_the_cut_documents_on_stderr(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "handbook.md").write_text(HANDBOOK)
    (tmp_path / "docs" / "note.txt").write_text("A short note about the bees.")
    done = subprocess.run(
        # binary:hamming searches one vector a document, so the new collection is whole by default
        [
            sys.executable,
            "-m",
            "ragembed.cli",
            "index",
            "docs",
            "--store",
            "memory:idx",
            "--strategy",
            "binary:hamming",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("ragembed: note: ")]
    assert len(notes) == 1 and "1 of 2 texts are longer than DenseEmbedder(" in notes[0], done.stderr
    assert "(documents are whole, not in passages: MemoryStore: binary:hamming keeps one vector" in notes[0]
    assert "window of 256 word pieces" in notes[0] and "warnings.warn" not in done.stderr
