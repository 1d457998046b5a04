"""Retriever.holds: whether indexing the same documents again would change nothing (BM25 on the
memory store: no model needed)."""

from __future__ import annotations

from dataclasses import replace

from ragembed import Document, MemoryStore, Retriever

DOCS = [Document(f"d{i}", f"cells divide {'fast ' * i}", {"year": 2020 + i}) for i in range(1, 6)]


def test_holds_exactly_the_documents_indexed():
    retriever = Retriever(MemoryStore(), "bm25")
    assert not retriever.holds(DOCS)  # no collection yet
    retriever.index(DOCS)
    assert retriever.holds(DOCS)
    assert retriever.holds(list(reversed(DOCS)))  # order does not matter
    assert not retriever.holds(DOCS[:-1])  # the collection holds one more
    assert not retriever.holds([*DOCS[:-1], replace(DOCS[-1], text="another text")])
    assert not retriever.holds([*DOCS[:-1], replace(DOCS[-1], metadata={"year": 1999})])
    assert not retriever.holds([*DOCS[:-1], Document("new", DOCS[-1].text)])


def test_a_strategy_whose_fields_are_missing_is_not_held():
    store = MemoryStore()
    Retriever(store, "bm25").index(DOCS)
    assert not Retriever(store, ["bm25", "dense"]).holds(DOCS)
