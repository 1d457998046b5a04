"""Fine-tuning on a small real BEIR folder cut from SciFact: training runs for real (a few steps),
saves models that ragembed's embedders load, and moves the model towards the training pairs.
Full-size runs and their scores are in docs/finetune.md."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ragembed import DenseEmbedder
from ragembed.errors import InvalidInputError, ModelLoadError
from ragembed.finetune.data import training_pairs
from ragembed.finetune.dense import MatryoshkaTraining, train_matryoshka
from ragembed.finetune.trainer import TRAINING_RECORD


def pair_margin(model: str, pairs) -> float:
    """Mean cosine of each query with its positive minus its mean cosine with the whole corpus."""
    embedder = DenseEmbedder(model, cache=False)
    q = embedder.embed_queries(pairs.queries).data
    p = embedder.embed_documents(pairs.positives).data
    c = embedder.embed_documents(pairs.corpus).data
    return float(np.mean(np.sum(q * p, axis=1)) - np.mean(q @ c.T))


def test_training_pairs_follow_the_qrels(small_beir):
    pairs = training_pairs(small_beir)
    assert len(pairs) >= 32 and len(pairs.queries) == len(pairs.positives)
    assert all(p in pairs.corpus for p in pairs.positives)


def test_matryoshka_training_saves_a_model_that_fits_the_pairs_better(small_beir, tmp_path):
    pairs = training_pairs(small_beir)
    config = MatryoshkaTraining(dims=(384, 64), epochs=2, batch_size=8, learning_rate=1e-4, seed=1)
    output = train_matryoshka(pairs, tmp_path / "model", config, show_progress=False)
    record = json.loads((output / TRAINING_RECORD).read_text())
    assert record["kind"] == "matryoshka" and record["config"]["dims"] == [384, 64]
    assert record["train_examples"] > 0
    trained = DenseEmbedder(str(output))
    assert trained.dim == 384
    # trained on 128-token cuts, the saved model still embeds whole 256-token texts like its base
    assert record["config"]["max_seq_length"] == 128 and trained.model.max_seq_length == 256
    assert pair_margin(str(output), pairs) > pair_margin("bundled:all-MiniLM-L6-v2", pairs)


def test_bad_training_input_is_refused_before_anything_is_written(small_beir, tmp_path):
    pairs = training_pairs(small_beir)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("a user's file")
    with pytest.raises(InvalidInputError, match="not an empty folder"):
        train_matryoshka(pairs, occupied)
    assert (occupied / "keep.txt").read_text() == "a user's file"
    with pytest.raises(InvalidInputError, match="1..384"):
        train_matryoshka(pairs, tmp_path / "new", MatryoshkaTraining(dims=(512, 64)))
    with pytest.raises(InvalidInputError, match="batch_size"):
        train_matryoshka(pairs, tmp_path / "new", MatryoshkaTraining(batch_size=1))
    with pytest.raises(InvalidInputError, match="max_seq_length"):
        train_matryoshka(pairs, tmp_path / "new", MatryoshkaTraining(max_seq_length=0))
    with pytest.raises(ModelLoadError):
        train_matryoshka(pairs, tmp_path / "new", MatryoshkaTraining(base_model="./no/such/model"))
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())
    with pytest.raises(InvalidInputError, match="missing"):
        training_pairs(small_beir, split="dev")


@pytest.mark.colbert
def test_colbert_training_saves_a_pylate_model_ragembed_loads(small_beir, tmp_path):
    pytest.importorskip("pylate")
    from ragembed import ColBERTEmbedder
    from ragembed.finetune.colbert import ColBERTTraining, train_colbert

    pairs = training_pairs(small_beir)
    output = train_colbert(
        pairs, tmp_path / "colbert", ColBERTTraining(epochs=1, batch_size=8, seed=1), show_progress=False
    )
    assert json.loads((output / TRAINING_RECORD).read_text())["kind"] == "colbert"
    trained, base = ColBERTEmbedder(str(output), cache=False), ColBERTEmbedder(cache=False)
    text = [pairs.positives[0]]
    a, b = trained.embed_documents(text).vectors[0], base.embed_documents(text).vectors[0]
    assert a.shape[1] == b.shape[1] == 128
    assert not np.allclose(a, b)  # the head moved


@pytest.mark.colbert
def test_colbert_training_with_a_smaller_head_makes_tokens_of_that_size(small_beir, tmp_path):
    pytest.importorskip("pylate")
    from ragembed import ColBERTEmbedder
    from ragembed.cli import main

    output = tmp_path / "colbert-64"
    args = ["finetune", "colbert", str(small_beir), "--output", str(output), "--no-eval", "--dim", "64"]
    assert main([*args, "--epochs", "1", "--batch-size", "8"]) == 0
    assert json.loads((output / TRAINING_RECORD).read_text())["config"]["dim"] == 64
    trained = ColBERTEmbedder(str(output), cache=False)
    assert trained.dim == 64
    assert trained.embed_documents(["Cells divide by mitosis."]).vectors[0].shape[1] == 64


def test_finetune_cli_trains_and_scores_before_and_after(small_beir, tmp_path, capsys):
    from ragembed.cli import main

    output = tmp_path / "cli-model"
    assert (
        main(
            [
                "finetune",
                "dense",
                str(small_beir),
                "--output",
                str(output),
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--dims",
                "384,64",
            ]
        )
        == 0
    )
    scores = json.loads((output / "ragembed-eval.json").read_text())["scores"]
    assert set(scores) == {"base", "fine-tuned"} and set(scores["base"]) == {"384", "64"}
    assert (output / "ragembed-eval.png").stat().st_size > 0
    assert "| 64 |" in (output / "ragembed-eval.md").read_text()
    assert main(["finetune", "dense", str(small_beir), "--output", str(output)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
