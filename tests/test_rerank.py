"""The rerank stage: a first stage's candidates scored again by a real cross-encoder (or by ColBERT
MaxSim over their stored tokens), on real SciFact abstracts; reranker training for real (a few
steps on a small SciFact cut); and every bad input the issue lists, refused by name.
Every store runs the same stage: tests/contract/test_rerank.py."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ragembed import CrossEncoderReranker, Document, Retriever
from ragembed.embedders.models import DEFAULT_MODEL, resolve_model_name
from ragembed.errors import InvalidInputError, ModelLoadError, TruncationWarning, UnsupportedStrategyError
from ragembed.finetune.data import training_pairs
from ragembed.finetune.reranker import RerankerTraining, train_reranker
from ragembed.finetune.trainer import TRAINING_RECORD
from ragembed.strategies import Reranked, parse_strategy

QUERY = "vitamin D deficiency and the risk of fractures in older adults"


@pytest.fixture(scope="module")
def indexed(scifact_docs, dense_embedder, bm25_embedder, cross_encoder):
    """120 SciFact abstracts in passages (the default), searched by hybrid and reranked."""
    retriever = Retriever(
        "memory",
        ["hybrid", "hybrid>rerank:20"],
        embedder=dense_embedder,
        sparse_embedder=bm25_embedder,
        reranker=cross_encoder,
    )
    retriever.index(scifact_docs)
    return retriever


def test_a_reranked_search_scores_the_first_stages_candidates_by_their_best_passage(indexed, cross_encoder):
    candidates = indexed.search(QUERY, k=20, strategy="hybrid")
    hits = indexed.search(QUERY, k=5, strategy="hybrid>rerank:20")
    assert len(hits) == 5 and {h.id for h in hits} <= {h.id for h in candidates}
    # every candidate scored: the 5 kept are the 5 best of the 20 by the cross-encoder's best passage
    (stored,) = indexed.store.search_many(indexed.plans([QUERY], 20, "hybrid"))  # hits with their passage maps
    best = {}
    for hit in stored:
        texts = [hit.text[a:b] for a, b in hit.passage_map.spans.tolist()]
        scores = cross_encoder.score(QUERY, texts)
        best[hit.id] = (float(scores.max()), texts[int(np.argmax(scores))])
    expected = sorted(best, key=lambda i: (-best[i][0], i))[:5]
    assert [h.id for h in hits] == expected
    for hit in hits:
        assert hit.score == pytest.approx(best[hit.id][0], abs=1e-5)
        assert hit.passage is not None and hit.passage.text == best[hit.id][1]  # the reranker's passage
        assert hit.text[hit.passage.start : hit.passage.end] == hit.passage.text
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_a_search_for_more_hits_than_candidates_reranks_k_of_them(indexed):
    hits = indexed.search(QUERY, k=30, strategy="hybrid>rerank:20")
    assert len(hits) == 30
    assert {h.id for h in hits} == {h.id for h in indexed.search(QUERY, k=30, strategy="hybrid")}


def test_the_async_search_reranks_the_same(indexed):
    import asyncio

    hits = asyncio.run(indexed.asearch(QUERY, k=5, strategy="hybrid>rerank:20"))
    assert [(h.id, h.score) for h in hits] == [
        (h.id, h.score) for h in indexed.search(QUERY, 5, strategy="hybrid>rerank:20")
    ]


def test_whole_documents_are_scored_whole_and_a_cut_is_reported(scifact_docs, dense_embedder, cross_encoder_dir):
    short = CrossEncoderReranker(str(cross_encoder_dir), max_length=64)
    retriever = Retriever("memory", "dense>rerank:10", embedder=dense_embedder, passages=False, reranker=short)
    with pytest.warns(TruncationWarning, match="window of 256"):  # the dense model's own cut
        retriever.index(scifact_docs[:40])
    with pytest.warns(TruncationWarning, match="longer than its 64 word pieces"):
        hits = retriever.search(QUERY, k=3)
        alone = [float(short.score(QUERY, [hit.text])[0]) for hit in hits]
    assert all(hit.passage is None for hit in hits)
    assert [h.score for h in hits] == pytest.approx(alone, abs=1e-5)


@pytest.mark.colbert
def test_colbert_rerank_is_exact_maxsim_over_the_stored_tokens(scifact_docs, dense_embedder, colbert_embedder):
    retriever = Retriever(
        "memory",
        ["dense", "colbert", "dense>colbert:30"],
        embedder=dense_embedder,
        multivector_embedder=colbert_embedder,
    )
    retriever.index(scifact_docs[:60])
    reranked = retriever.search(QUERY, k=10, strategy="dense>colbert:30")
    exact = {h.id: h.score for h in retriever.search(QUERY, k=60, strategy="colbert")}
    dense_30 = {h.id for h in retriever.search(QUERY, k=30, strategy="dense")}
    assert {h.id for h in reranked} <= dense_30
    for hit in reranked:
        assert hit.score == pytest.approx(exact[hit.id], rel=1e-5)
    # an index without the ColBERT tokens is refused before the store is asked, naming the fields
    plain = Retriever("memory", ["dense"], embedder=dense_embedder)
    plain.index(scifact_docs[:5])
    with pytest.raises(UnsupportedStrategyError, match="'colbert'.*index the documents with this strategy"):
        plain.search(QUERY, strategy="dense>colbert")


@pytest.mark.colbert
def test_rerank_plus_colbert_fuses_both_rankings_by_reciprocal_rank(
    scifact_docs, dense_embedder, colbert_embedder, cross_encoder
):
    retriever = Retriever(
        "memory",
        ["dense", "dense>rerank+colbert:20"],
        embedder=dense_embedder,
        multivector_embedder=colbert_embedder,
        reranker=cross_encoder,
    )
    retriever.index(scifact_docs[:60])
    by_cross_encoder = retriever.search(QUERY, k=20, strategy="dense>rerank:20")  # all 20 candidates, ranked
    by_maxsim = retriever.search(QUERY, k=20, strategy="dense>colbert:20")
    fused = {}
    for ranking in (by_cross_encoder, by_maxsim):
        for rank, hit in enumerate(ranking, start=1):
            fused[hit.id] = fused.get(hit.id, 0.0) + 1 / (60 + rank)
    hits = retriever.search(QUERY, k=5, strategy="dense>rerank+colbert:20")
    assert [h.id for h in hits] == sorted(fused, key=lambda i: (-fused[i], i))[:5]
    assert [h.score for h in hits] == pytest.approx([fused[h.id] for h in hits])
    passages = {h.id: h.passage for h in by_cross_encoder}
    assert all(h.passage == passages[h.id] for h in hits)  # the cross-encoder's passage


def test_strategy_names_round_trip_and_bad_candidate_counts_are_refused():
    assert parse_strategy("hybrid>rerank").name == "hybrid>rerank"
    assert parse_strategy("hybrid>rerank:20").name == "hybrid>rerank:20"
    assert parse_strategy("colbert+dense:50>colbert:100").name == "colbert+dense:50>colbert:100"
    assert parse_strategy("hybrid>rerank+colbert:20").name == "hybrid>rerank+colbert:20"
    assert parse_strategy("hybrid>rerank+colbert").kinds[-1].value == "multivector"
    assert parse_strategy("hybrid>rerank:20") == Reranked(parse_strategy("hybrid"), "rerank", 20)
    for bad, error in [
        ("hybrid>rerank:0", "positive whole number"),
        ("hybrid>rerank:-5", "rerank\\[:candidates\\]"),
        ("hybrid>rerank:ten", "rerank\\[:candidates\\]"),
        ("hybrid>cross", "rerank\\[:candidates\\]"),
        ("hybrid>rerank>colbert", "rerank\\[:candidates\\]"),
        ("hybrid>colbert+rerank", "rerank\\[:candidates\\]"),
        ("hybird>rerank", "unknown strategy 'hybird'"),
    ]:
        with pytest.raises((InvalidInputError, UnsupportedStrategyError), match=error):
            parse_strategy(bad)
    with pytest.raises(InvalidInputError, match="positive whole number"):
        Reranked(parse_strategy("dense"), "rerank", -1)


def test_a_cross_encoder_strategy_without_a_reranker_is_refused_by_name(scifact_docs, dense_embedder):
    retriever = Retriever("memory", ["dense", "dense>rerank"], embedder=dense_embedder)
    retriever.index(scifact_docs[:5])  # indexing needs no reranker
    with pytest.raises(UnsupportedStrategyError, match="--reranker PATH.*ragembed finetune reranker"):
        retriever.search(QUERY, strategy="dense>rerank")


def test_a_reranker_path_that_is_not_a_cross_encoder_is_refused_naming_what_it_is(tmp_path, cross_encoder_dir):
    with pytest.raises(ModelLoadError, match="is a bi-encoder"):
        CrossEncoderReranker(DEFAULT_MODEL)
    with pytest.raises(ModelLoadError, match="is a bi-encoder"):
        CrossEncoderReranker(resolve_model_name(DEFAULT_MODEL))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="holds no config.json"):
        CrossEncoderReranker(str(empty))
    base_only = tmp_path / "base-config"
    base_only.mkdir()
    shutil.copy(resolve_model_name(DEFAULT_MODEL) + "/config.json", base_only / "config.json")
    with pytest.raises(ModelLoadError, match="BertModel, not a cross-encoder"):
        CrossEncoderReranker(str(base_only))
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "config.json").write_text("not json")
    with pytest.raises(ModelLoadError, match="not a model configuration"):
        CrossEncoderReranker(str(junk))
    with pytest.raises(ModelLoadError, match="no model directory"):
        CrossEncoderReranker(str(tmp_path / "missing"))
    with pytest.raises(InvalidInputError, match="folder or hub name"):
        CrossEncoderReranker("")
    with pytest.raises(InvalidInputError, match="CrossEncoderReranker or the folder"):
        Retriever("memory", "dense>rerank", reranker=42)  # type: ignore[arg-type]


@pytest.mark.colbert
def test_a_colbert_folder_is_refused_as_a_reranker(tmp_path):
    from pylate import models

    folder = tmp_path / "colbert"
    models.ColBERT(model_name_or_path=resolve_model_name(DEFAULT_MODEL)).save(str(folder))
    with pytest.raises(ModelLoadError, match="is a ColBERT \\(PyLate\\) model.*>colbert"):
        CrossEncoderReranker(str(folder))


def test_reranker_training_saves_a_cross_encoder_that_ranks_positives_higher(small_beir, tmp_path, cross_encoder):
    pairs = training_pairs(small_beir)
    config = RerankerTraining(epochs=2, batch_size=8, hard_negatives=2, seed=1)
    output = train_reranker(pairs, tmp_path / "reranker", config, show_progress=False)
    record = json.loads((output / TRAINING_RECORD).read_text())
    assert record["kind"] == "reranker" and record["config"]["hard_negatives"] == 2 and record["train_examples"] > 0
    trained = CrossEncoderReranker(str(output))
    # trained on 128-word-piece cuts, it reads a 128-word-piece passage with its query whole
    assert record["config"]["max_length"] == 128 and trained.max_length == 256

    def wins(reranker: CrossEncoderReranker) -> float:
        """How often a query's positive outscores each of 20 other corpus texts (16 queries)."""
        won = []
        for query, positive in list(zip(pairs.queries, pairs.positives))[:16]:
            others = [t for t in pairs.corpus[:21] if t != positive][:20]
            scores = reranker.score(query, [positive, *others])
            won.append(float((scores[0] > scores[1:]).mean()))
        return float(np.mean(won))

    trained_wins, untrained_wins = wins(trained), wins(cross_encoder)
    assert trained_wins > untrained_wins + 0.1, (trained_wins, untrained_wins)  # 0.913 against 0.394 here


def test_bad_reranker_training_input_is_refused_before_anything_is_written(small_beir, tmp_path):
    pairs = training_pairs(small_beir)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("a user's file")
    with pytest.raises(InvalidInputError, match="not an empty folder"):
        train_reranker(pairs, occupied)
    assert (occupied / "keep.txt").read_text() == "a user's file"
    with pytest.raises(InvalidInputError, match="hard_negatives"):
        RerankerTraining(hard_negatives=-1)
    with pytest.raises(InvalidInputError, match="other pairs' positives in the batch"):
        RerankerTraining(batch_size=4, random_negatives=4)
    with pytest.raises(InvalidInputError, match="needs negatives"):
        RerankerTraining(hard_negatives=0, random_negatives=0)
    with pytest.raises(InvalidInputError, match="max_length"):
        RerankerTraining(max_length=0)
    with pytest.raises(ModelLoadError):
        train_reranker(pairs, tmp_path / "new", RerankerTraining(base_model="./no/such/model"))
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())


def test_finetune_reranker_cli_trains_and_scores_the_first_stage_with_and_without_it(small_beir, tmp_path, capsys):
    from ragembed.cli import main

    output = tmp_path / "cli-reranker"
    args = ["finetune", "reranker", str(small_beir), "--output", str(output), "--epochs", "1", "--batch-size", "8"]
    assert (
        main(
            [
                *args,
                "--hard-negatives",
                "0",
                "--random-negatives",
                "3",
                "--max-length",
                "96",
                "--first-stage",
                "dense",
                "--candidates",
                "20",
            ]
        )
        == 0
    )
    scores = json.loads((output / "ragembed-eval.json").read_text())["scores"]
    assert set(scores) == {"dense", "dense>rerank:20"}
    assert 0 <= scores["dense>rerank:20"]["ndcg@10"] <= 1 and "recall@100" in scores["dense"]
    assert "| dense>rerank:20 |" in (output / "ragembed-eval.md").read_text()
    assert main([*args, "--first-stage", "hybird"]) == 2  # refused before any training
    assert "unknown strategy 'hybird'" in capsys.readouterr().err
    searched = main(
        ["search", QUERY, "--store", "memory", "--strategy", "dense>rerank", "--reranker", str(tmp_path / "missing")]
    )
    assert searched == 2 and "no model directory" in capsys.readouterr().err


def test_a_collection_smaller_than_the_candidates_is_reranked_whole(dense_embedder, cross_encoder):
    retriever = Retriever("memory", "dense>rerank:5", embedder=dense_embedder, reranker=cross_encoder)
    docs = [
        Document(f"d{i}", t)
        for i, t in enumerate(["Vitamin D and bone fractures.", "Fractures in the elderly.", "Coffee."])
    ]
    retriever.index(docs)
    hits = retriever.search(QUERY, k=3)
    assert sorted(h.id for h in hits) == ["d0", "d1", "d2"]


def test_the_cli_searches_a_reranked_strategy_with_the_reranker_it_is_given(
    scifact_docs, tmp_path, capsys, cross_encoder_dir
):
    from ragembed.cli import main

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": d.id, "text": d.text}) + "\n" for d in scifact_docs[:30]))
    store = ["--store", f"qdrant-edge:{tmp_path / 'index'}"]
    assert main(["index", str(corpus), *store, "--strategy", "hybrid"]) == 0
    capsys.readouterr()
    reranked = ["--strategy", "hybrid>rerank:10", "--json", "-k", "3"]
    assert main(["search", QUERY, *store, *reranked, "--reranker", str(cross_encoder_dir)]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3 and all(h["passage"]["text"] for h in hits)
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    assert main(["search", QUERY, *store, *reranked]) == 2  # no --reranker: refused by name
    assert "--reranker PATH" in capsys.readouterr().err
