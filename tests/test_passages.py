"""Long documents in passages: split in the model's own tokens with offsets and heading paths,
recorded with the collection, each hit with its best passage, and the bad inputs refused."""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from cli_runner import cli

from ragembed import Document, MemoryStore, Retriever
from ragembed.errors import (
    InvalidInputError,
    SchemaMismatchError,
    StoreError,
    TruncationWarning,
    UnsupportedStrategyError,
)
from ragembed.passages import DEFAULT_CHUNKING, MIN_PASSAGE_TOKENS, Chunking, heading_paths
from ragembed.types import MultiVectorEmbeddings, PassageMap

HANDBOOK = (Path(__file__).parent / "data" / "handbook.md").read_text()
QUERY = "where are the zebrafish heart regeneration samples stored and who may move them"
NOTES = [Document(f"note-{i}", f"A short note number {i} about the coffee machine.") for i in range(4)]
DOCS = [Document("handbook.md", HANDBOOK), *NOTES]


def tokens(embedder, text: str) -> int:
    return len(embedder.model.tokenizer(text, add_special_tokens=False)["input_ids"])


def test_passages_fit_the_window_cover_the_text_and_keep_offsets(dense_embedder):
    splitter = dense_embedder.splitter(Chunking())
    passages = splitter.split(HANDBOOK)
    assert splitter.capacity == 254  # 256 less [CLS] and [SEP]
    assert len(passages) > 10
    for p in passages:
        assert HANDBOOK[p.start : p.end] == p.text
        assert tokens(dense_embedder, p.text) <= 254
    covered = np.zeros(len(HANDBOOK), bool)
    for p in passages:
        covered[p.start : p.end] = True
    assert all(c.isspace() for c, seen in zip(HANDBOOK, covered) if not seen)  # only whitespace between them


def test_passages_break_at_headings_and_carry_their_path(dense_embedder):
    passages = dense_embedder.splitter(Chunking(128)).split(HANDBOOK)
    assert all(tokens(dense_embedder, p.text) <= 128 for p in passages)
    last = passages[-1]
    assert last.headings == ("Laboratory handbook", "Sample storage")
    assert "freezer B7" in last.text
    starts = {p.headings[-1] for p in passages if p.text.startswith("## ")}
    assert {"Safety training", "Sample storage"} <= starts  # sections begin passages


def test_heading_paths_skip_code_fences_and_nest_by_level():
    text = "# A\n\ntext\n\n```\n# not a heading\n```\n\n## B\n\nmore\n\n### C\n\n## D\n"
    assert [path for _, path in heading_paths(text)] == [("A",), ("A", "B"), ("A", "B", "C"), ("A", "D")]


def test_overlap_repeats_word_pieces_of_the_passage_before(dense_embedder):
    plain = " ".join(f"Sentence {i} is about a different thing." for i in range(200))
    alone = dense_embedder.splitter(Chunking(64)).split(plain)
    overlapping = dense_embedder.splitter(Chunking(64, 16)).split(plain)
    assert len(overlapping) > len(alone)
    assert any(b.start < a.end for a, b in itertools.pairwise(overlapping))
    assert all(b.start >= a.end for a, b in itertools.pairwise(alone))


def test_whole_documents_lose_the_needle_and_passages_find_it(dense_embedder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TruncationWarning: tests/test_truncation.py
        whole = Retriever(MemoryStore(), "dense", embedder=dense_embedder, passages=False)
        whole.index(DOCS)
    passages = Retriever(MemoryStore(), "dense", embedder=dense_embedder, passages=True)
    passages.index(DOCS)
    whole_hit = next(h for h in whole.search(QUERY, 5) if h.id == "handbook.md")
    top = passages.search(QUERY, 5)[0]
    assert top.id == "handbook.md" and top.passage is not None
    assert top.score > whole_hit.score + 0.3  # the fact was beyond the window
    assert whole_hit.passage is None


def test_search_passages_returns_passages_with_their_document(dense_embedder):
    retriever = Retriever(MemoryStore(), "dense", embedder=dense_embedder, chunk_size=64)
    retriever.index(DOCS)
    hits = retriever.search_passages(QUERY, 5)
    assert len(hits) == 5 and [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert sum(h.id == "handbook.md" for h in hits) >= 2  # several passages of one document
    best = hits[0]
    assert best.passage is not None and best.text == best.passage.text and "freezer B7" in best.text
    # the best passage's score is the document's score (MaxSim of one query vector), up to the
    # int8 copy of the passage vectors it is read from
    assert best.score == pytest.approx(retriever.search(QUERY, 1)[0].score, abs=2e-3)


def test_the_collection_records_its_passage_settings_and_refuses_others(dense_embedder, tmp_path):
    path = tmp_path / "store"
    retriever = Retriever(MemoryStore(path), "dense", embedder=dense_embedder, chunk_size=96, chunk_overlap=8)
    retriever.index(DOCS)
    retriever.close()
    reopened = Retriever(MemoryStore(path), "dense", embedder=dense_embedder)
    assert reopened.chunking == Chunking(96, 8)
    assert reopened.search(QUERY, 1)[0].passage is not None
    for other in ({"chunk_size": 128}, {"passages": False}, {"chunk_size": 96, "chunk_overlap": 0}):
        with pytest.raises(SchemaMismatchError, match=r"chunk_size 96, chunk_overlap 8"):
            Retriever(reopened.store, "dense", embedder=dense_embedder, **other)
    assert reopened.count() == len(DOCS)


def test_a_whole_document_collection_refuses_passages(dense_embedder):
    store = MemoryStore()
    Retriever(store, "bm25", passages=False).index(NOTES)  # whole documents (BM25 reads them whole anyway)
    with pytest.raises(SchemaMismatchError, match="not split into passages"):
        Retriever(store, "bm25", chunk_size=64)
    assert store.count() == len(NOTES)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"chunk_size": 300}, "above .* window: a passage of more than 254"),
        ({"chunk_size": MIN_PASSAGE_TOKENS - 1}, "below 8 word pieces"),
        ({"chunk_size": 0}, "positive whole number"),
        ({"chunk_size": 64, "chunk_overlap": 64}, "must be smaller than chunk_size 64"),
        ({"chunk_overlap": 128}, "must be smaller than chunk_size 128"),
        ({"chunk_size": "window", "chunk_overlap": 254}, "smaller than the passage size, 254"),
        ({"chunk_size": "half"}, "a whole number of word pieces or 'window'"),
        ({"chunk_overlap": -1}, "whole number >= 0"),
        ({"passages": False, "chunk_size": 64}, "leave them out with passages=False"),
        ({"passages": "yes"}, "passages must be True, False or None"),
    ],
)
def test_bad_passage_settings_are_refused_before_anything_is_stored(dense_embedder, settings, match):
    store = MemoryStore()
    Retriever(store, "dense", embedder=dense_embedder, passages=True).index(NOTES)
    with pytest.raises(InvalidInputError, match=match):
        retriever = Retriever(MemoryStore(), "dense", embedder=dense_embedder, **settings)
        retriever.index(DOCS)
    assert store.count() == len(NOTES)


def test_odd_documents_split_without_losing_text(dense_embedder):
    word = "x" * 10_000  # one word: the tokenizer makes it one [UNK]; it is one passage
    headings = "\n\n".join(f"## Heading {i}" for i in range(300))  # Markdown that is all headings
    retriever = Retriever(MemoryStore(), "dense", embedder=dense_embedder, passages=True)
    retriever.index([Document("word", word), Document("headings", headings), *NOTES])
    passages = dense_embedder.splitter(DEFAULT_CHUNKING).split(headings)
    assert len(passages) > 1 and "## Heading 299" in passages[-1].text
    assert [p.text for p in dense_embedder.splitter(Chunking()).split(word)] == [word]
    hit = retriever.search("a list of headings", 1)[0]
    assert hit.id == "headings" and hit.passage in passages
    with pytest.raises(InvalidInputError, match="empty or whitespace only"):
        retriever.index([Document("blank", "\n\n\n")])
    assert retriever.count() == 6


def test_a_new_collection_is_split_into_passages_of_128_by_default(dense_embedder, tmp_path):
    retriever = Retriever(MemoryStore(tmp_path / "store"), "dense", embedder=dense_embedder)
    assert retriever.chunking == DEFAULT_CHUNKING == Chunking(128) and retriever.whole_because is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)  # nothing is cut
        retriever.index(DOCS)
    top = retriever.search(QUERY, 1)[0]
    assert top.id == "handbook.md" and top.passage is not None and "freezer B7" in top.passage.text
    assert tokens(dense_embedder, top.passage.text) <= 128
    retriever.close()
    assert MemoryStore(tmp_path / "store").schema.passages["size"] == 128  # recorded, followed when reopened


def test_a_strategy_that_cannot_search_passages_keeps_a_new_collection_whole_and_says_why(dense_embedder):
    retriever = Retriever(MemoryStore(), ["dense", "binary:hamming"], embedder=dense_embedder)
    assert retriever.chunking is None
    assert retriever.whole_because is not None and "binary:hamming keeps one vector" in retriever.whole_because
    with pytest.warns(TruncationWarning, match=r"whole, not in passages: MemoryStore: binary:hamming keeps"):
        retriever.index(DOCS)
    assert retriever.search(QUERY, 1, strategy="binary:hamming")[0].passage is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)  # a short text is cut nowhere: no word of why
        Retriever(MemoryStore(), "binary:hamming", embedder=dense_embedder).index(NOTES)


def test_qdrant_local_mode_keeps_int8_collections_whole_by_default_naming_the_stores_that_split(
    dense_embedder, tmp_path
):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # local mode's "no native quantization"
        retriever = Retriever(f"qdrant-local:{tmp_path / 'local'}", "int8", embedder=dense_embedder)
        assert retriever.chunking is None and "qdrant-edge:PATH" in (retriever.whole_because or "")
        with pytest.raises(UnsupportedStrategyError, match="keeps no int8 index"):
            Retriever(retriever.store, "int8", embedder=dense_embedder, passages=True).index(NOTES)
        assert retriever.count() == 0
        dense = Retriever(f"qdrant-local:{tmp_path / 'dense'}", "dense", embedder=dense_embedder)
        assert dense.chunking == DEFAULT_CHUNKING
    retriever.close()
    dense.close()


def test_keyword_hybrid_and_hamming_are_refused_over_passages(dense_embedder):
    retriever = Retriever(MemoryStore(), "binary:hamming", embedder=dense_embedder, passages=True)
    with pytest.raises(UnsupportedStrategyError, match="use 'binary'"):
        retriever.index(NOTES)
    assert retriever.count() == 0


def test_search_passages_needs_a_collection_in_passages(dense_embedder):
    whole = Retriever(MemoryStore(), "dense", embedder=dense_embedder, passages=False)
    whole.index(NOTES)
    with pytest.raises(UnsupportedStrategyError, match="not split into passages"):
        whole.search_passages("coffee")


def test_bm25_hits_carry_the_passage_the_dense_model_ranks_first(dense_embedder, bm25_embedder):
    """bm25 searches the whole text; the collection's passage map still names each hit's best
    passage, the query encoded by the dense model for it (a Retriever holding only bm25 too)."""
    handbook = Document("handbook.md", HANDBOOK)
    Retriever(
        store := MemoryStore(), ["dense", "bm25"], embedder=dense_embedder, sparse_embedder=bm25_embedder, passages=True
    ).index([handbook, *NOTES])
    lexical = Retriever(store, "bm25", embedder=dense_embedder, sparse_embedder=bm25_embedder)
    (top,) = lexical.search(QUERY, k=1)
    assert top.id == "handbook.md"
    assert top.passage is not None and "freezer B7" in top.passage.text
    passages = lexical.search_passages(QUERY, k=4)
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    assert "freezer B7" in passages[0].passage.text
    by_dense = Retriever(store, "dense", embedder=dense_embedder).search_passages(QUERY, k=4)
    dense_scores = {(p.id, p.passage.start): p.score for p in by_dense}
    for p in passages:  # the same passage model scores them, whichever strategy found the document
        if (p.id, p.passage.start) in dense_scores:
            assert p.score == pytest.approx(dense_scores[(p.id, p.passage.start)], abs=1e-6)


def test_the_cli_indexes_passages_and_prints_the_passage_and_its_line(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "handbook.md").write_text(HANDBOOK)
    (tmp_path / "docs" / "note.txt").write_text("A short note about the coffee machine.")
    store = ["--store", "memory:idx"]
    both = ["--strategy", "dense", "--strategy", "bm25:passages"]
    done = cli("index", "docs", *store, *both, "--chunk-size", "128", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ragembed: note:" not in done.stderr  # nothing was cut
    lexical = cli("search", QUERY, *store, "-k", "1", "--strategy", "bm25:passages", "--json", cwd=tmp_path)
    assert lexical.returncode == 0, lexical.stderr
    assert json.loads(lexical.stdout)[0]["id"] == "handbook.md"
    found = cli("search", QUERY, *store, "-k", "1", "--json", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    (hit,) = json.loads(found.stdout)
    line = HANDBOOK[: hit["passage"]["start"]].count("\n") + 1
    assert hit["id"] == "handbook.md" and hit["passage"]["headings"] == ["Laboratory handbook", "Sample storage"]
    assert "freezer B7" in hit["passage"]["text"] and hit["passage"]["line"] == line
    shown = cli("search", QUERY, *store, "-k", "1", cwd=tmp_path)
    assert f"handbook.md:{line}  [Laboratory handbook > Sample storage]" in shown.stdout
    top = cli("search", QUERY, *store, "-k", "3", "--passages", "--json", cwd=tmp_path)
    assert top.returncode == 0, top.stderr
    passages = json.loads(top.stdout)
    assert len(passages) == 3 and passages[0]["text"] == passages[0]["passage"]["text"] == hit["passage"]["text"]
    other = cli("index", "docs", *store, "--chunk-size", "64", cwd=tmp_path)
    assert other.returncode == 2 and "chunk_size 128, chunk_overlap 0" in other.stderr
    bad = cli("index", "docs", "--store", "memory:idx2", "--chunk-size", "999", cwd=tmp_path)
    assert bad.returncode == 2 and "pick at most 254" in bad.stderr
    assert MemoryStore(tmp_path / "idx2").schema is None  # no collection was made
    junk = cli("index", "docs", "--store", "memory:idx2", "--chunk-size", "big", cwd=tmp_path)
    assert junk.returncode == 2 and "'big': give a whole number of word pieces, or 'window'" in junk.stderr


def test_the_cli_splits_by_default_says_how_and_takes_the_whole_window(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "handbook.md").write_text(HANDBOOK)
    done = cli("index", "docs", "--store", "memory:idx", "--strategy", "dense", cwd=tmp_path)
    assert done.returncode == 0 and "ragembed: note:" not in done.stderr, done.stderr
    assert "passages of 128 word pieces, overlap 0" in done.stdout
    window = cli("index", "docs", "--store", "memory:win", "--chunk-size", "window", "--json", cwd=tmp_path)
    assert window.returncode == 0, window.stderr
    assert json.loads(window.stdout)["passages"]["size"] is None  # each model's own window
    whole = cli("index", "docs", "--store", "memory:whole", "--no-passages", cwd=tmp_path)
    assert whole.returncode == 0 and "whole documents" in whole.stdout
    assert "ragembed: note: 1 of 1 texts are longer than" in whole.stderr


def test_reindexing_a_shorter_document_leaves_none_of_its_old_passages(dense_embedder):
    retriever = Retriever(MemoryStore(), "dense", embedder=dense_embedder, chunk_size=64)
    retriever.index(DOCS)
    before = retriever.store.vectors(["handbook.md"], "dense")["handbook.md"]
    assert len(before) > 40  # one vector per passage, one record
    retriever.index([Document("handbook.md", "Now a one-line handbook about freezer B7.")])
    after = retriever.store.vectors(["handbook.md"], "dense")["handbook.md"]
    assert after.shape == (1, 384) and retriever.count() == len(DOCS)
    hit = retriever.search(QUERY, 1)[0]
    assert hit.id == "handbook.md" and hit.passage is not None and hit.passage.text == hit.text
    assert retriever.delete(["handbook.md"]) == 1 and retriever.store.vectors(["handbook.md"], "dense") == {}


def test_a_store_in_passages_takes_exactly_one_matching_passage_map_per_document(dense_embedder):
    retriever = Retriever(MemoryStore(), "dense", embedder=dense_embedder, chunk_size=64)
    retriever.index(DOCS)
    store, before = retriever.store, retriever.search(QUERY, 1)[0]
    doc = Document("handbook.md", "One passage now.")
    two = {"dense": MultiVectorEmbeddings((np.eye(2, 384, dtype=np.float32),))}
    spans, two_rows = np.array([[0, 4], [4, 16]]), np.eye(2, 384)
    with pytest.raises(InvalidInputError, match="give one PassageMap per document"):
        store.upsert([doc], two)
    with pytest.raises(InvalidInputError, match="passage map 0 holds 1 vectors of 384 dimensions"):
        store.upsert([doc], two, [PassageMap.of(spans[:1], np.eye(1, 384))])
    assert retriever.search(QUERY, 1)[0] == before and store.count() == len(DOCS)  # nothing changed
    store.upsert([doc], two, [PassageMap.of(spans, two_rows)])
    assert store.vectors(["handbook.md"], "dense")["handbook.md"].shape == (2, 384)
    whole = MemoryStore()
    Retriever(whole, "dense", embedder=dense_embedder, passages=False).index(NOTES)
    with pytest.raises(InvalidInputError, match="holds no per-passage field; upsert without them"):
        whole.upsert([doc], {"dense": dense_embedder.embed_documents([doc.text])}, [PassageMap.of(spans, two_rows)])


def test_a_damaged_passage_map_is_named_not_answered(dense_embedder, tmp_path):
    path = tmp_path / "store"
    retriever = Retriever(MemoryStore(path), "dense", embedder=dense_embedder, chunk_size=96)
    retriever.index(DOCS)
    retriever.close()
    data = next(path.glob("data-*")) / "documents.jsonl"
    records = [json.loads(line) for line in data.read_text().splitlines()]
    records[0]["passage_map"] = records[0]["passage_map"][:-40]  # cut short
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    damaged = Retriever(MemoryStore(path), "dense", embedder=dense_embedder)
    with pytest.raises(StoreError, match=r"document 'handbook.md' .* has a damaged passage map"):
        damaged.search(QUERY, 3)


def test_bm25_over_passages_normalises_against_passages_and_restores_their_statistics(
    dense_embedder, bm25_embedder, tmp_path
):
    """bm25:passages embeds the passages the dense model split (their BM25 against the average
    passage length, recorded with the collection), and scores a document by its best passage."""
    path = tmp_path / "idx"
    retriever = Retriever(
        MemoryStore(path), ["bm25:passages", "bm25"], embedder=dense_embedder, sparse_embedder=bm25_embedder
    )
    retriever.index(DOCS)
    record = retriever.store.schema.encoders["sparse"]
    split = [[p.text for p in dense_embedder.splitter(DEFAULT_CHUNKING).split(d.text)] for d in DOCS]
    passages = list(itertools.chain(*split))  # the handbook's first
    assert record["passage_avgdl"] == pytest.approx(np.mean([len(t) for t in bm25_embedder.tokenize(passages)]))
    assert record["avgdl"] == pytest.approx(np.mean([len(t) for t in bm25_embedder.tokenize([d.text for d in DOCS])]))
    assert bm25_embedder.passage_avgdl is None  # the embedder given is left as it was
    (top,) = retriever.search(QUERY, k=1, strategy="bm25:passages")
    assert top.id == "handbook.md" and "freezer B7" in top.passage.text
    # the score is the best passage's BM25, by hand: IDF over the collection's passages
    encoder = bm25_embedder.fitted_to_passages(passages).for_passages()
    vectors, query = encoder.embed_documents(passages), bm25_embedder.embed_queries([QUERY])
    n = len(passages)
    df = {t: sum(t in set(i.tolist()) for i in vectors.indices) for t in query.indices[0].tolist()}
    idf = {t: np.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
    handbook = zip(vectors.indices[: len(split[0])], vectors.values)
    best = max(sum(idf[t] * w for t, w in zip(i.tolist(), v.tolist()) if t in idf) for i, v in handbook)
    assert top.score == pytest.approx(best, rel=1e-5)
    retriever.close()
    again = Retriever(MemoryStore(path), "bm25:passages", embedder=dense_embedder, sparse_embedder=bm25_embedder)
    assert again.embedder("sparse").passage_avgdl == record["passage_avgdl"]  # restored, not refitted
    assert again.search(QUERY, k=1)[0].score == pytest.approx(top.score)
    again.close()


def test_bm25_over_passages_is_refused_where_documents_are_whole_or_the_store_cannot(dense_embedder, tmp_path):
    with pytest.raises(UnsupportedStrategyError, match="best passage, and whole documents were asked for"):
        Retriever(MemoryStore(), "bm25:passages", embedder=dense_embedder, passages=False)
    with pytest.raises(
        UnsupportedStrategyError, match="new collection here holds whole documents: MemoryStore: binary:h"
    ):
        Retriever(MemoryStore(), ["binary:hamming", "bm25:passages"], embedder=dense_embedder)
    Retriever(whole := MemoryStore(), "dense", embedder=dense_embedder, passages=False).index(NOTES)
    with pytest.raises(SchemaMismatchError, match="holds whole documents; index in passages, into another"):
        Retriever(whole, "bm25:passages", embedder=dense_embedder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(UnsupportedStrategyError, match="no engine scores a set of sparse vectors; use 'bm25'"):
            Retriever(f"qdrant-local:{tmp_path / 'local'}", "bm25:passages", embedder=dense_embedder)
