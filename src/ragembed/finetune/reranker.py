"""Reranker training: a cross-encoder (query and document read together, one relevance score) from
a dense encoder, by default the bundled MiniLM, to which sentence-transformers adds a one-output
classification head.

Binary cross-entropy over labelled pairs: each judged (query, relevant document) pair labelled 1
and `hard_negatives` mined documents labelled 0, the negatives mined with the dense base model by
sentence-transformers' `mine_hard_negatives` (the same mining as Matryoshka and ColBERT training).
The positives are weighted up by the number of negatives (`pos_weight`), so the loss is not won by
calling everything irrelevant.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ragembed.embedders.models import load_error, quiet_loading, resolve_model_name
from ragembed.finetune.data import TrainingPairs, mine_negatives
from ragembed.finetune.trainer import TrainingOptions, refuse_non_empty, train_and_save
from ragembed.types import check_positive


@dataclass(frozen=True)
class RerankerTraining(TrainingOptions):
    """The defaults are those of the run docs/finetune.md reports on SciFact. max_length: word
    pieces of a (query, document) pair while training, and what the saved model reads at most."""

    epochs: int = 1
    batch_size: int = 16
    learning_rate: float = 2e-5
    hard_negatives: int = 5
    max_length: int = 256
    min_hard_negatives: ClassVar[int] = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("max_length", self.max_length, integer=True)


def train_reranker(
    pairs: TrainingPairs,
    output_dir: str | Path,
    config: RerankerTraining = RerankerTraining(),
    *,
    show_progress: bool = True,
) -> Path:
    """Train, save a cross-encoder folder (loadable with `CrossEncoderReranker(str(path))`)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.cross_encoder import CrossEncoder
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from transformers import set_seed

    output = Path(output_dir).expanduser()
    refuse_non_empty(output)
    base_path = resolve_model_name(config.base_model)
    started = time.perf_counter()
    try:
        with quiet_loading():
            miner = SentenceTransformer(base_path)
    except Exception as exc:
        raise load_error(config.base_model, exc) from exc
    dataset = mine_negatives(
        miner,
        base_path,
        pairs,
        config.hard_negatives,
        config.negative_rank_max,
        config.negative_margin,
        show_progress,
        labeled=True,
    )
    del miner
    mined_s = time.perf_counter() - started

    set_seed(config.seed)  # the classification head starts from a seeded random init
    with quiet_loading():
        model = CrossEncoder(base_path, num_labels=1, max_length=config.max_length)
    loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(float(config.hard_negatives)))
    return train_and_save(
        model,
        dataset,
        loss,
        config,
        output,
        {"kind": "reranker", "train_pairs": len(pairs), "mining_s": round(mined_s, 1)},
        show_progress=show_progress,
        cross_encoder=True,
    )
