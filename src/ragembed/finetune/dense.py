"""Matryoshka training of a dense model with sentence-transformers.

MultipleNegativesRankingLoss (in-batch negatives plus one mined hard negative per pair) inside
MatryoshkaLoss, so every prefix of the vector (384, 256, ... 32 dimensions) is trained to rank
on its own. Hard negatives come from sentence-transformers' `mine_hard_negatives` with the base
model, skipping the few documents that score almost as high as the positive (likely unjudged
relevant documents in BEIR sets).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragembed.embedders.models import load_error, model_dim, quiet_loading, resolve_model_name
from ragembed.errors import InvalidInputError
from ragembed.finetune.data import TrainingPairs, training_examples
from ragembed.finetune.trainer import TrainingOptions, refuse_non_empty, train_and_save
from ragembed.types import check_positive


@dataclass(frozen=True)
class MatryoshkaTraining(TrainingOptions):
    """Defaults: chosen by a sweep on SciFact (docs/finetune.md) for the best 64-dimension score
    that trains in under 20 minutes on 2 CPU cores: 0.714 nDCG@10 at 384 dims, 0.649 at 64
    (base model 0.645 / 0.484), 18.6 minutes from a cold cache. hard_negatives 0 trains on
    in-batch negatives only."""

    epochs: int = 4
    learning_rate: float = 1e-4
    dims: tuple[int, ...] = (384, 256, 128, 64, 32)
    # (dimension, loss weight) pairs; dimensions not listed weigh 1, listed ones not trained are
    # ignored. Extra weight on 64 lifts the small prefixes (0.632 against 0.591 unweighted).
    dim_weights: tuple[tuple[int, float], ...] = ((64, 2.0),)
    # Training truncates texts to this many tokens: half of MiniLM's 256 halves the cost, for
    # the same scores (docs/finetune.md). The saved model embeds with the base model's length.
    max_seq_length: int = 128

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("max_seq_length", self.max_seq_length, integer=True)
        if (
            not self.dims
            or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in self.dims)
            or len(set(self.dims)) != len(self.dims)
        ):
            raise InvalidInputError(
                f"Matryoshka dimensions {list(self.dims)} must be distinct whole numbers >= 1, "
                "for example 384,256,128,64,32"
            )
        if any(
            isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w < float("inf")
            for _, w in self.dim_weights
        ):
            raise InvalidInputError(f"dim_weights {dict(self.dim_weights)} must be positive")

    def check(self, full_dim: int) -> None:
        """The dimensions against the base model's."""
        if max(self.dims) > full_dim:
            raise InvalidInputError(
                f"Matryoshka dimensions {list(self.dims)} must be distinct and lie in 1..{full_dim} (the base "
                f"model's dimension); for example 384,256,128,64,32 for a 384-dimension model"
            )


def train_matryoshka(
    pairs: TrainingPairs,
    output_dir: str | Path,
    config: MatryoshkaTraining = MatryoshkaTraining(),
    *,
    show_progress: bool = True,
    inner_loss: Callable[[Any], Any] | None = None,
) -> Path:
    """Train, save the model folder (loadable with `DenseEmbedder(model=str(path))`) and return it.

    inner_loss: builds the loss MatryoshkaLoss wraps from the model being trained (called once
    the model is cut to the training length); default MultipleNegativesRankingLoss. The
    settings sweep (benchmarks/finetune_sweep.py) tries others through it."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.losses import MatryoshkaLoss, MultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers
    from transformers import set_seed

    output = Path(output_dir).expanduser()
    refuse_non_empty(output)
    set_seed(config.seed)
    base_path = resolve_model_name(config.base_model)
    try:
        with quiet_loading():
            model = SentenceTransformer(base_path)  # on a GPU when there is one
    except Exception as exc:
        raise load_error(config.base_model, exc) from exc
    config.check(model_dim(model))

    started = time.perf_counter()
    # Mined at the model's own length: negatives mined from 128-token cuts trained worse models.
    dataset = training_examples(model, base_path, pairs, config, show_progress)
    mined_s = time.perf_counter() - started
    embedding_length = model.max_seq_length
    model.max_seq_length = config.max_seq_length

    weights = dict(config.dim_weights)
    inner = (inner_loss or MultipleNegativesRankingLoss)(model)
    loss = MatryoshkaLoss(
        model, inner, matryoshka_dims=list(config.dims), matryoshka_weights=[weights.get(d, 1.0) for d in config.dims]
    )
    return train_and_save(
        model,
        dataset,
        loss,
        config,
        output,
        {"kind": "matryoshka", "train_pairs": len(pairs), "mining_s": round(mined_s, 1)},
        show_progress=show_progress,
        saved_max_seq_length=embedding_length,
        # a duplicate text in a batch would be a false in-batch negative
        batch_sampler=BatchSamplers.NO_DUPLICATES,
    )
