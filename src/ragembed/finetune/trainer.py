"""What Matryoshka, ColBERT and reranker training share: sentence-transformers' trainer (the
cross-encoder one for a reranker) run with one set of arguments, the model saved, and a record of
how it was made beside it."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from ragembed.embedders.models import DEFAULT_MODEL
from ragembed.errors import InvalidInputError
from ragembed.types import check_positive

TRAINING_RECORD = "ragembed-finetune.json"


@dataclass(frozen=True)
class TrainingOptions:
    """What Matryoshka and ColBERT training share, checked when built (a bad value fails here,
    not minutes later inside the trainer)."""

    base_model: str = DEFAULT_MODEL
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    hard_negatives: int = 1  # mined negatives per (query, positive) pair
    negative_rank_max: int = 30  # negatives are sampled from the base model's top ranks ...
    negative_margin: float = 0.05  # ... scoring at most (1 - margin) x the positive's score
    seed: int = 42
    min_hard_negatives: ClassVar[int] = 0

    def __post_init__(self) -> None:
        check_positive("epochs", self.epochs, integer=True)
        check_positive("batch_size", self.batch_size, integer=True)
        if self.batch_size < 2:
            raise InvalidInputError("batch_size must be at least 2: the loss ranks each query against the batch")
        check_positive("learning_rate", self.learning_rate)
        if not self.learning_rate < 1:
            raise InvalidInputError(f"learning_rate {self.learning_rate} is not in (0, 1); try 1e-4")
        _check_fraction("warmup_ratio", self.warmup_ratio)
        _check_fraction("negative_margin", self.negative_margin)
        if (
            isinstance(self.hard_negatives, bool)
            or not isinstance(self.hard_negatives, int)
            or self.hard_negatives < self.min_hard_negatives
        ):
            raise InvalidInputError(
                f"hard_negatives must be a whole number >= {self.min_hard_negatives}, got {self.hard_negatives!r}"
            )
        check_positive("negative_rank_max", self.negative_rank_max, integer=True)
        if self.negative_rank_max < self.hard_negatives:
            raise InvalidInputError(
                f"negative_rank_max ({self.negative_rank_max}) must be at least hard_negatives "
                f"({self.hard_negatives}): negatives are drawn from that many top documents"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidInputError(f"seed must be a whole number >= 0, got {self.seed!r}")
        if not isinstance(self.base_model, str) or not self.base_model.strip():
            raise InvalidInputError(f"base_model must be a model name or folder, got {self.base_model!r}")


def _check_fraction(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise InvalidInputError(f"{name} must be a number in [0, 1), got {value!r}")


def refuse_non_empty(output: Path) -> None:
    """Never train over a folder that holds something: it may be the user's model."""
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise InvalidInputError(f"{output} exists and is not an empty folder; choose a new output folder")


def train_and_save(
    model: Any,
    dataset: Any,
    loss: Any,
    config: Any,
    output: Path,
    record: dict[str, Any],
    *,
    show_progress: bool,
    saved_max_seq_length: int | None = None,
    cross_encoder: bool = False,
    **trainer_options: Any,
) -> Path:
    """Train `model` on `dataset` with `loss` (config: epochs, batch_size, learning_rate,
    warmup_ratio, seed), save it to `output` with ragembed-finetune.json (the config, the
    training time and `record`). saved_max_seq_length: the truncation the saved model embeds
    (a cross-encoder: reads) with, when it differs from the training one. cross_encoder: `model` is a CrossEncoder
    (CrossEncoderTrainer). trainer_options: batch_sampler, or data_collator for PyLate."""
    if cross_encoder:
        from sentence_transformers.cross_encoder import CrossEncoderTrainer as Trainer
        from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments as Arguments
    else:
        from sentence_transformers import SentenceTransformerTrainer as Trainer  # type: ignore[assignment]
        from sentence_transformers import SentenceTransformerTrainingArguments as Arguments  # type: ignore[assignment]

    collator = trainer_options.pop("data_collator", None)
    scratch = tempfile.mkdtemp(prefix="ragembed-train-")  # the trainer wants a folder; nothing is kept
    args = Arguments(
        output_dir=scratch,
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_ratio=config.warmup_ratio,
        seed=config.seed,
        data_seed=config.seed,
        save_strategy="no",
        logging_steps=10,
        report_to="none",
        disable_tqdm=not show_progress,
        **trainer_options,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=dataset, loss=loss, **({"data_collator": collator} if collator else {})
    )
    started = time.perf_counter()
    try:
        trainer.train()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if saved_max_seq_length and cross_encoder:
        model.max_length = saved_max_seq_length
    elif saved_max_seq_length:
        model.max_seq_length = saved_max_seq_length
    model.save(str(output))
    record = {
        **record,
        "config": asdict(config),
        "train_examples": len(dataset),
        "training_s": round(time.perf_counter() - started, 1),
    }
    (output / TRAINING_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return output
