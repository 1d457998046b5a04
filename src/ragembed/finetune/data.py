"""Training examples from a BEIR split: (query, relevant document) pairs, and hard negatives."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragembed.embedders.cache import default_cache_dir
from ragembed.embedders.models import load_error, model_fingerprint, quiet_loading, resolve_model_name
from ragembed.errors import InvalidInputError
from ragembed.evaluation.beir import load_beir


@dataclass(frozen=True)
class TrainingPairs:
    queries: list[str]
    positives: list[str]
    corpus: list[str]  # every document text, the pool hard negatives are mined from

    def __len__(self) -> int:
        return len(self.queries)


def training_pairs(folder: str | Path, split: str = "train") -> TrainingPairs:
    """One pair per judged (query, document) with relevance > 0, in qrels order.

    Document texts are built exactly as evaluation builds them ("title text"), so the model
    trains on what it will later embed."""
    dataset = load_beir(folder, split)
    texts = {d.id: d.text for d in dataset.corpus}
    queries, positives = [], []
    for qid, judged in dataset.qrels.items():
        for doc_id, relevance in judged.items():
            if relevance > 0 and doc_id in texts:
                queries.append(dataset.queries[qid])
                positives.append(texts[doc_id])
    if not queries:
        raise InvalidInputError(
            f"{folder}: qrels/{split}.tsv has no positive judgment whose document is in corpus.jsonl; "
            "fine-tuning needs (query, relevant document) pairs"
        )
    return TrainingPairs(queries, positives, list(texts.values()))


def mine_negatives(
    model: Any, model_path: str, pairs: TrainingPairs, count: int, rank_max: int, margin: float, show_progress: bool
) -> Any:
    """(anchor, positive, negative...) rows: sentence-transformers' `mine_hard_negatives` with
    `model` (a SentenceTransformer), sampling `count` negatives per pair among the corpus
    documents ranked within the top `rank_max` that score at most (1 - margin) x the positive
    (closer ones are often relevant documents nobody judged)."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    # The utility's own cache keys embeddings by the texts and the hub name only (none for a local
    # folder), so a folder per model fingerprint and truncation length keeps two setups apart.
    setup = f"{model_fingerprint(model_path)}:{model.max_seq_length}"
    key = hashlib.sha256(setup.encode()).hexdigest()[:16]
    return mine_hard_negatives(
        Dataset.from_dict({"anchor": pairs.queries, "positive": pairs.positives}),
        model,
        corpus=pairs.corpus,
        range_max=rank_max,
        relative_margin=margin,
        num_negatives=count,
        sampling_strategy="random",
        output_format="n-tuple" if count > 1 else "triplet",
        batch_size=64,
        verbose=show_progress,
        cache_folder=str(default_cache_dir() / "hard-negatives" / key),
    )


def training_examples(model: Any, model_path: str, pairs: TrainingPairs, config: Any, show_progress: bool) -> Any:
    """What a trainer trains on: (anchor, positive) rows, with `config.hard_negatives` mined
    negatives each where it asks for any (config: a TrainingOptions; model: the SentenceTransformer
    that mines them)."""
    if not config.hard_negatives:
        from datasets import Dataset

        return Dataset.from_dict({"anchor": pairs.queries, "positive": pairs.positives})
    return mine_negatives(
        model, model_path, pairs, config.hard_negatives, config.negative_rank_max, config.negative_margin, show_progress
    )


def examples_from_base(pairs: TrainingPairs, config: Any, show_progress: bool) -> tuple[Any, str, float]:
    """`training_examples` mined with `config.base_model` (loaded for the mining, then freed), the
    base model's path and the seconds it took: what ColBERT and reranker training start from."""
    from sentence_transformers import SentenceTransformer

    base_path = resolve_model_name(config.base_model)
    started = time.perf_counter()
    try:
        with quiet_loading():
            miner = SentenceTransformer(base_path)
    except Exception as exc:
        raise load_error(config.base_model, exc) from exc
    dataset = training_examples(miner, base_path, pairs, config, show_progress)
    return dataset, base_path, time.perf_counter() - started
