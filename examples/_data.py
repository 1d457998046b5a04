"""Shared by the examples: a slice of the shipped BEIR SciFact (the first N abstracts, plus the
test queries whose relevant abstracts are among them)."""

from __future__ import annotations

from pathlib import Path

from ragembed.evaluation import load_beir

SCIFACT = Path(__file__).resolve().parents[1] / "data" / "scifact"


def scifact_slice(n_docs: int, n_queries: int):
    """(documents, {query id: query text}, qrels) restricted to the first n_docs abstracts."""
    data = load_beir(SCIFACT, "test")
    docs = data.corpus[:n_docs]
    ids = {d.id for d in docs}
    queries = {q: text for q, text in data.queries.items() if set(data.qrels[q]) & ids}
    chosen = dict(list(queries.items())[:n_queries])
    return docs, chosen, {q: data.qrels[q] for q in chosen}
