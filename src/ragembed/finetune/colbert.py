"""ColBERT training with PyLate: a late-interaction model from a dense encoder (by default the
bundled MiniLM, to which PyLate adds a 384 -> 128 projection head).

Contrastive loss over (query, positive, hard negative) triplets plus in-batch negatives, the
negatives mined with the dense base model by sentence-transformers' `mine_hard_negatives`
(the same mining as Matryoshka training, so both models learn from the same examples).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ragembed.embedders.models import quiet_loading
from ragembed.errors import MissingDependencyError
from ragembed.finetune.data import TrainingPairs, examples_from_base
from ragembed.finetune.trainer import TrainingOptions, refuse_non_empty, train_and_save
from ragembed.types import check_positive


@dataclass(frozen=True)
class ColBERTTraining(TrainingOptions):
    """The defaults are those of the best run on SciFact (docs/finetune.md). Training takes
    (query, positive, negative) triplets, so hard_negatives is at least 1. `dim` is the size of
    each token vector the projection head makes (PyLate's `embedding_size`; 64 stores half the
    bytes of the default 128 per token)."""

    epochs: int = 2
    dim: int = 128
    document_length: int = 256
    query_length: int = 32
    min_hard_negatives: ClassVar[int] = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("dim", self.dim, integer=True)
        check_positive("document_length", self.document_length, integer=True)
        check_positive("query_length", self.query_length, integer=True)


def train_colbert(
    pairs: TrainingPairs,
    output_dir: str | Path,
    config: ColBERTTraining = ColBERTTraining(),
    *,
    show_progress: bool = True,
) -> Path:
    """Train, save a PyLate model folder (loadable with `ColBERTEmbedder(model=str(path))`)."""
    try:
        from pylate import losses, models, utils
    except ImportError as exc:
        raise MissingDependencyError.for_extra("pylate", "colbert") from exc
    from transformers import set_seed

    output = Path(output_dir).expanduser()
    refuse_non_empty(output)
    dataset, base_path, mined_s = examples_from_base(pairs, config, show_progress)

    set_seed(config.seed)  # the projection head starts from a seeded random init
    with quiet_loading():
        model = models.ColBERT(
            model_name_or_path=base_path,
            embedding_size=config.dim,
            document_length=config.document_length,
            query_length=config.query_length,
        )
    return train_and_save(
        model,
        dataset,
        losses.Contrastive(model=model),
        config,
        output,
        {"kind": "colbert", "train_pairs": len(pairs), "mining_s": round(mined_s, 1)},
        show_progress=show_progress,
        data_collator=utils.ColBERTCollator(model.tokenize),
    )
