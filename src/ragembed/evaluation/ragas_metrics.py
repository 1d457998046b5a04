"""RAGAS context metrics, computed by the `ragas` package's own metric classes.

Without an LLM, two pairs run:
  context_precision / context_recall                 IDBasedContextPrecision / IDBasedContextRecall:
                                                     retrieved document ids against the judged ids
  context_precision_nonllm / context_recall_nonllm   NonLLMContextPrecisionWithReference /
                                                     NonLLMContextRecall: retrieved texts against the
                                                     judged documents' texts (string similarity)
The LLM-judged variants need an LLM, which ragembed does not configure; `LLM_SKIPPED` says so
in reports instead of pretending.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

from ragembed.errors import MissingDependencyError
from ragembed.types import Hit

LLM_SKIPPED = (
    "LLM-based RAGAS metrics (LLMContextPrecisionWithReference, LLMContextRecall) were not "
    "run: they need an LLM, and none is configured"
)


def ragas_context_metrics(
    results: Mapping[str, Sequence[Hit]], qrels: Mapping[str, Mapping[str, int]], texts: Mapping[str, str], k: int = 10
) -> dict[str, float]:
    """Mean RAGAS context precision/recall over judged queries, using each query's top k."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from ragas.dataset_schema import SingleTurnSample
            from ragas.metrics._context_precision import IDBasedContextPrecision, NonLLMContextPrecisionWithReference
            from ragas.metrics._context_recall import IDBasedContextRecall, NonLLMContextRecall
    except ImportError as exc:
        raise MissingDependencyError.for_extra("ragas", "eval") from exc
    metrics = {
        "context_precision": IDBasedContextPrecision(),
        "context_recall": IDBasedContextRecall(),
        "context_precision_nonllm": NonLLMContextPrecisionWithReference(),
        "context_recall_nonllm": NonLLMContextRecall(),
    }
    totals: dict[str, list[float]] = {name: [] for name in metrics}
    for qid, judged in qrels.items():
        relevant = [d for d, grade in judged.items() if grade > 0]
        top = list(results.get(qid, []))[:k]
        retrieved = [h.id for h in top]
        if not relevant:
            continue
        if not retrieved:  # nothing retrieved: no precision to speak of, and nothing recalled
            for name in totals:
                totals[name].append(0.0)
            continue
        ids = SingleTurnSample(retrieved_context_ids=[*retrieved], reference_context_ids=[*relevant])
        # A hit's own text: the store may hold documents the dataset's corpus does not.
        contexts = SingleTurnSample(
            retrieved_contexts=[texts.get(h.id, h.text) for h in top],
            reference_contexts=[texts[d] for d in relevant if d in texts],
        )
        for name, metric in metrics.items():
            value = metric.single_turn_score(ids if name in ("context_precision", "context_recall") else contexts)
            totals[name].append(0.0 if value is None or math.isnan(value) else float(value))
    return {name: sum(v) / len(v) if v else 0.0 for name, v in totals.items()}
