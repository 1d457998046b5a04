"""The needle test, on every store: a fact in the last section of a 3,000-word Markdown handbook
is the top hit, with that section as its passage, for every passage strategy the store serves
(bm25:passages among them), and for bm25 (the whole text) and colbert (token windows covering it),
whose hits' passages the dense passage map names.

Whole, the handbook is embedded only up to the model's window (its first ~200 words), so the
fact cannot be found by a dense vector (tests/test_passages.py checks that it is not)."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import pytest

from ragembed import Document, Retriever
from ragembed.errors import RagembedError

from .backends import BACKENDS, backend_params

HANDBOOK = (Path(__file__).parents[1] / "data" / "handbook.md").read_text()
QUERY = "where are the zebrafish heart regeneration samples stored and who may move them"
NOTES = [
    Document(f"note-{i}", text)
    for i, text in enumerate(
        [
            "The coffee machine on the second floor is descaled every Friday.",
            "Group meeting moves to Thursday at ten this month.",
            "Remember to return borrowed pipettes to the teaching lab.",
            "The printer in room 204 is out of toner; use the one in 210.",
        ]
    )
]
STRATEGIES = ["dense", "int8", "binary", "funnel:64", "colbert+dense", "hybrid", "bm25", "bm25:passages", "colbert"]


def served(store, strategies: list[str]) -> list[str]:
    """The strategies this store serves in a collection split into passages (the others it refuses
    by name)."""
    caps = store.capabilities
    out = []
    for name in strategies:
        kinds_ok = name not in ("hybrid", "bm25", "bm25:passages") or "sparse" in {k.value for k in caps.kinds}
        kinds_ok &= name != "bm25:passages" or caps.sparse_passages
        # Weaviate's BQ compares bits with bits (its creation warns), rescored: served all the same.
        quantized_ok = name not in ("int8", "binary") or caps.quantized_multivectors
        if kinds_ok and quantized_ok:
            out.append(name)
    return out


@pytest.mark.parametrize("backend_name", backend_params())
def test_a_fact_in_the_last_section_is_found_with_its_passage(
    backend_name, tmp_path, dense_embedder, bm25_embedder, colbert_embedder
):
    backend = BACKENDS[backend_name]
    store = backend.create(tmp_path)
    strategies = served(store, STRATEGIES)
    embedders = {"embedder": dense_embedder, "sparse_embedder": bm25_embedder, "multivector_embedder": colbert_embedder}
    try:
        with warnings.catch_warnings():  # local mode's "no native quantization" warning
            warnings.simplefilter("ignore")
            Retriever(store, strategies, passages=True, **embedders).index([Document("handbook.md", HANDBOOK), *NOTES])
        if backend.reopen is not None:
            store.close()
            store = backend.reopen(tmp_path)
        retriever = Retriever(store, strategies, **embedders)  # passage settings: the collection's
        assert retriever.chunking is not None
        for strategy in strategies:
            if backend.drive_async:
                hits = asyncio.run(retriever.asearch(QUERY, 3, strategy=strategy))
            else:
                hits = retriever.search(QUERY, 3, strategy=strategy)
            top = hits[0]
            assert top.id == "handbook.md", (strategy, [(h.id, h.score) for h in hits])
            assert top.passage is not None, strategy
            assert top.passage.headings == ("Laboratory handbook", "Sample storage"), strategy
            assert "freezer B7" in top.passage.text, strategy
            assert HANDBOOK[top.passage.start : top.passage.end] == top.passage.text
        refused = [s for s in STRATEGIES if s not in strategies]
        for strategy in refused:  # refused by name, never answered wrongly
            with pytest.raises(RagembedError):
                retriever.search(QUERY, 3, strategy=strategy)
    finally:
        if backend.on_shared_server:
            store.drop()
        store.close()


@pytest.mark.parametrize("backend_name", backend_params())
def test_a_document_written_again_or_deleted_keeps_no_old_passage(backend_name, tmp_path, dense_embedder):
    """Re-indexing a document with fewer passages leaves none of the old ones behind, delete and
    delete_where take all of them, and count() counts documents, not passages."""
    backend = BACKENDS[backend_name]
    store = backend.create(tmp_path)
    try:
        retriever = Retriever(store, "dense", embedder=dense_embedder, chunk_size=64)
        handbook = Document("handbook.md", HANDBOOK, {"kind": "manual"})
        retriever.index([handbook, *NOTES])
        assert retriever.count() == 1 + len(NOTES)
        assert len(store.vectors(["handbook.md"], "dense")["handbook.md"]) > 40
        retriever.index([Document("handbook.md", "Now a one-line handbook about freezer B7.", {"kind": "manual"})])
        assert store.vectors(["handbook.md"], "dense")["handbook.md"].shape == (1, 384)
        assert retriever.count() == 1 + len(NOTES)
        (top,) = retriever.search("a one-line handbook about freezer B7", 1)
        assert top.id == "handbook.md" and top.passage is not None and top.passage.text == top.text
        assert retriever.delete_where({"kind": "manual"}) == 1
        assert store.vectors(["handbook.md"], "dense") == {} and retriever.count() == len(NOTES)
        retriever.index([handbook])
        assert retriever.delete(["handbook.md", "note-0"]) == 2
        assert store.vectors(["handbook.md", "note-0"], "dense") == {} and retriever.count() == len(NOTES) - 1
        # None of the deleted documents (nor their passages) is found. Not "all three notes are":
        # Weaviate's HNSW sometimes misses one right after deletes (its tombstones), in 2 of 4 runs.
        found = {h.id for h in retriever.search(QUERY, 10)}
        assert found and found <= {n.id for n in NOTES[1:]}
    finally:
        if backend.on_shared_server:
            store.drop()
        store.close()
