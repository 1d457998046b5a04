"""The sweep that chose `ragembed finetune dense`'s defaults: Matryoshka training settings on
SciFact, each scored by nDCG@10 at 384/256/128/64/32 dimensions on the test split.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/finetune_sweep.py [--only NAME,NAME]
        [--output runs/finetune_sweep.json]

Meant for a GPU (each run about 30 s on an H100; on 2 CPU cores 15-30 minutes each). Every run
starts from the bundled MiniLM with the settings below (the rest are MatryoshkaTraining's
defaults) through ragembed's own training (negatives mined at the base model's 256 tokens, the
model saved at 256), and is scored with the evaluation module. docs/finetune.md holds the results.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import _bench

from ragembed.embedders.models import default_model_path
from ragembed.evaluation import load_beir
from ragembed.finetune.compare import dense_scores_by_dim
from ragembed.finetune.data import training_pairs
from ragembed.finetune.dense import MatryoshkaTraining, train_matryoshka
from ragembed.finetune.trainer import TRAINING_RECORD

DIMS = (384, 256, 128, 64, 32)
W_SMALL = ((64, 3.0), (32, 2.0))
# name: (loss, MatryoshkaTraining settings); "gist" = GISTEmbedLoss guided by the base model,
# "cached" = CachedMultipleNegativesRankingLoss (big batches in 32-example chunks).
RUNS = {
    "seq256-ep3": ("mnrl", {"max_seq_length": 256, "epochs": 3}),
    "seq128-ep3": ("mnrl", {"epochs": 3}),
    "seq128-ep3-lr2e-4": ("mnrl", {"epochs": 3, "learning_rate": 2e-4}),
    "seq128-ep3-w64x3-w32x2": ("mnrl", {"epochs": 3, "dim_weights": W_SMALL}),
    "seq128-ep3-batch64": ("mnrl", {"epochs": 3, "batch_size": 64}),
    "seq128-ep3-gist": ("gist", {"epochs": 3}),
    "seq128-ep4-defaults": ("mnrl", {}),
    "seq128-ep4-seed1": ("mnrl", {"seed": 1}),
    "seq128-ep2-3negatives": ("mnrl", {"epochs": 2, "hard_negatives": 3}),
    "seq192-ep2": ("mnrl", {"max_seq_length": 192, "epochs": 2}),
    "seq128-ep3-cached-batch128-lr2e-4": ("cached", {"epochs": 3, "batch_size": 128, "learning_rate": 2e-4}),
    "seq128-ep4-lr2e-4": ("mnrl", {"learning_rate": 2e-4}),
    "seq128-ep4-w64x3-w32x2": ("mnrl", {"dim_weights": W_SMALL}),
    "seq128-ep4-w64x3-w32x2-seed1": ("mnrl", {"dim_weights": W_SMALL, "seed": 1}),
    "seq128-ep5-w64x3-w32x2": ("mnrl", {"epochs": 5, "dim_weights": W_SMALL}),
}


def train(loss_kind: str, settings: dict, pairs, folder: Path) -> float:
    """Train one run with ragembed's own Matryoshka training; its training seconds."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.losses import CachedMultipleNegativesRankingLoss, GISTEmbedLoss

    def gist(model):  # guided by the base model, cut to the same length
        guide = SentenceTransformer(default_model_path())
        guide.max_seq_length = model.max_seq_length
        return GISTEmbedLoss(model, guide)

    inner = {
        "mnrl": None,
        "gist": gist,
        "cached": lambda model: CachedMultipleNegativesRankingLoss(model, mini_batch_size=32),
    }[loss_kind]
    train_matryoshka(pairs, folder, replace(MatryoshkaTraining(), **settings), show_progress=False, inner_loss=inner)
    return json.loads((folder / TRAINING_RECORD).read_text())["training_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(_bench.SCIFACT))
    parser.add_argument("--only", default="", help="comma-separated run names (default: all)")
    parser.add_argument("--output", default="runs/finetune_sweep.json")
    args = parser.parse_args()
    test = load_beir(args.data, "test")
    pairs = training_pairs(args.data, "train")
    chosen = [n for n in RUNS if not args.only or n in args.only.split(",")]
    rows = [
        {
            "run": "base model",
            **{
                str(d): s["ndcg@10"]
                for d, s in dense_scores_by_dim(test, {"base": default_model_path()}, DIMS, show_progress=False)[
                    "base"
                ].items()
            },
        }
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name in chosen:
            loss_kind, settings = RUNS[name]
            folder = Path(tmp) / f"run{len(rows)}"
            train_s = train(loss_kind, settings, pairs, folder)
            scores = dense_scores_by_dim(test, {name: str(folder)}, DIMS, show_progress=False)[name]
            rows.append({"run": name, "train_s": train_s, **{str(d): scores[d]["ndcg@10"] for d in DIMS}})
            print(_bench.table(rows, COLUMNS), flush=True)
    _bench.write_json(args.output, {"rows": rows})


COLUMNS = [("run", "run", ""), ("train_s", "train s", ".0f")] + [(str(d), f"nDCG@10 {d}", ".4f") for d in DIMS]

if __name__ == "__main__":
    main()
