"""What Matryoshka and ColBERT training share: sentence-transformers' trainer run with one set
of arguments, the model saved, and a record of how it was made beside it."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ragembed.errors import InvalidInputError

TRAINING_RECORD = "ragembed-finetune.json"


def refuse_non_empty(output: Path) -> None:
    """Never train over a folder that holds something: it may be the user's model."""
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise InvalidInputError(f"{output} exists and is not an empty folder; choose a new output folder")


def train_and_save(model: Any, dataset: Any, loss: Any, config: Any, output: Path, record: dict[str, Any], *,
                   show_progress: bool, saved_max_seq_length: int | None = None, **trainer_options: Any) -> Path:
    """Train `model` on `dataset` with `loss` (config: epochs, batch_size, learning_rate,
    warmup_ratio, seed), save it to `output` with ragembed-finetune.json (the config, the
    training time and `record`). saved_max_seq_length: the truncation the saved model embeds
    with, when it differs from the training one. trainer_options: batch_sampler, or
    data_collator for PyLate."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    collator = trainer_options.pop("data_collator", None)
    scratch = tempfile.mkdtemp(prefix="ragembed-train-")  # the trainer wants a folder; nothing is kept
    args = SentenceTransformerTrainingArguments(
        output_dir=scratch, num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate, warmup_ratio=config.warmup_ratio, seed=config.seed,
        data_seed=config.seed, save_strategy="no", logging_steps=10, report_to="none",
        disable_tqdm=not show_progress, **trainer_options,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss,
                                         **({"data_collator": collator} if collator else {}))
    started = time.perf_counter()
    try:
        trainer.train()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if saved_max_seq_length:
        model.max_seq_length = saved_max_seq_length
    model.save(str(output))
    record = {**record, "config": asdict(config), "train_examples": len(dataset),
              "training_s": round(time.perf_counter() - started, 1)}
    (output / TRAINING_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return output
