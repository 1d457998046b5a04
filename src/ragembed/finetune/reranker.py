"""Reranker training: a cross-encoder (query and document read together, one relevance score) from
a dense encoder, by default the bundled MiniLM, to which sentence-transformers adds a one-output
classification head.

sentence-transformers' cross-encoder MultipleNegativesRankingLoss: for each judged (query,
relevant document) pair, the positive is scored against `hard_negatives` documents mined with the
dense base model by `mine_hard_negatives` (the same mining as Matryoshka and ColBERT training) and
`random_negatives` other positives of the batch, softmax cross-entropy over them.

Why not binary cross-entropy over (query, document, 0/1) pairs, the usual cross-encoder loss:
from the bi-encoder MiniLM (trained with mean pooling, so its [CLS] token, which the
classification head reads, carries no relevance yet) it did not learn from mined negatives
alone: a full SciFact epoch left the loss where it began and the reranked nDCG@10 at 0.36
against the first stage's 0.83 on 60 queries (docs/finetune.md). Easy in-batch negatives give
the head a signal to start from; the mined ones then teach the hard cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ragembed.embedders.models import quiet_loading
from ragembed.errors import InvalidInputError
from ragembed.finetune.data import TrainingPairs, examples_from_base
from ragembed.finetune.trainer import TrainingOptions, refuse_non_empty, train_and_save
from ragembed.types import check_positive


@dataclass(frozen=True)
class RerankerTraining(TrainingOptions):
    """The defaults are those of the run docs/finetune.md reports on SciFact. max_length: word
    pieces of a (query, document) pair while training; saved_max_length: what the saved model
    reads at most."""

    epochs: int = 2
    batch_size: int = 16
    learning_rate: float = 1e-4
    hard_negatives: int = 1
    random_negatives: int = 4  # other positives of the batch, scored as negatives
    max_length: int = 128
    # What the saved model reads of a (query, text) pair: a passage of 128 word pieces and its
    # query, which training's shorter cuts would truncate (as Matryoshka training saves at 256).
    saved_max_length: int = 256
    min_hard_negatives: ClassVar[int] = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("max_length", self.max_length, integer=True)
        check_positive("saved_max_length", self.saved_max_length, integer=True)
        if isinstance(self.random_negatives, bool) or not isinstance(self.random_negatives, int):
            raise InvalidInputError(f"random_negatives must be a whole number >= 0, got {self.random_negatives!r}")
        if self.random_negatives < 0 or self.random_negatives >= self.batch_size:
            raise InvalidInputError(
                f"random_negatives must be in [0, batch_size) = [0, {self.batch_size}): they are other "
                f"pairs' positives in the batch, got {self.random_negatives}"
            )
        if self.random_negatives + self.hard_negatives == 0:
            raise InvalidInputError("a reranker needs negatives: hard_negatives or random_negatives >= 1")


def train_reranker(
    pairs: TrainingPairs,
    output_dir: str | Path,
    config: RerankerTraining = RerankerTraining(),
    *,
    show_progress: bool = True,
) -> Path:
    """Train, save a cross-encoder folder (loadable with `CrossEncoderReranker(str(path))`)."""
    from sentence_transformers.cross_encoder import CrossEncoder
    from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers
    from transformers import set_seed

    output = Path(output_dir).expanduser()
    refuse_non_empty(output)
    dataset, base_path, mined_s = examples_from_base(pairs, config, show_progress)

    set_seed(config.seed)  # the classification head starts from a seeded random init
    with quiet_loading():
        model = CrossEncoder(base_path, num_labels=1, max_length=config.max_length)
    loss = MultipleNegativesRankingLoss(model, num_negatives=config.random_negatives)
    return train_and_save(
        model,
        dataset,
        loss,
        config,
        output,
        {"kind": "reranker", "train_pairs": len(pairs), "mining_s": round(mined_s, 1)},
        show_progress=show_progress,
        saved_max_seq_length=config.saved_max_length,
        cross_encoder=True,
        batch_sampler=BatchSamplers.NO_DUPLICATES,  # a text twice in a batch would be its own negative
    )
