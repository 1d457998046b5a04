"""Before/after evaluation of fine-tuned models: nDCG@10 (and recall@100) at each dimension, and a
first stage's nDCG@10 with and without a trained reranker.

Each model indexes the test split into an exact in-memory store, once at full dimension;
`matryoshka:D` truncates those vectors (no re-encoding). Scores come from the evaluation module
(pytrec_eval), so they are the numbers `ragembed eval` prints.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ragembed.evaluation.beir import BeirDataset
from ragembed.evaluation.runner import evaluate
from ragembed.retriever import Retriever
from ragembed.stores.memory import MemoryStore

Scores = dict[str, dict[int, dict[str, float]]]  # model label -> dimension -> metric -> value


def dense_scores_by_dim(
    dataset: BeirDataset, models: Mapping[str, str], dims: Sequence[int], *, show_progress: bool = True
) -> Scores:
    """{label: {dim: {"ndcg@10": ..., "recall@100": ...}}} for dense models given by name/path."""
    from ragembed.embedders.dense import DenseEmbedder

    scores: Scores = {}
    for label, model in models.items():
        embedder = DenseEmbedder(model, show_progress=show_progress)
        strategies = {d: "dense" if d >= embedder.dim else f"matryoshka:{d}" for d in dims}
        # Whole documents, cut at the window, as the trainer sees them: the model's own before/after
        # difference, comparable with docs/finetune.md's figures, not the passages' gain.
        retriever = Retriever(
            MemoryStore(), list(dict.fromkeys(strategies.values())), embedder=embedder, passages=False
        )
        retriever.index(dataset.corpus)
        runs = {r.strategy: r.metrics for r in evaluate(retriever, dataset, show_progress=show_progress)}
        scores[label] = {d: pick(runs[name]) for d, name in strategies.items()}
    return scores


def colbert_scores(
    dataset: BeirDataset, models: Mapping[str, str | None], *, show_progress: bool = True
) -> dict[str, dict[str, float]]:
    """{label: {"ndcg@10": ..., "recall@100": ...}} for PyLate ColBERT models (exact MaxSim);
    a model of None is ColBERTEmbedder's default."""
    from ragembed.embedders.colbert import ColBERTEmbedder

    scores = {}
    for label, model in models.items():
        retriever = Retriever(
            MemoryStore(),
            "colbert",
            multivector_embedder=ColBERTEmbedder(model, show_progress=show_progress),
            passages=False,  # as for dense_scores
        )
        retriever.index(dataset.corpus)
        scores[label] = pick(evaluate(retriever, dataset, show_progress=show_progress)[0].metrics)
    return scores


def reranker_scores(
    dataset: BeirDataset, reranker: str, first: str, candidates: int, *, show_progress: bool = True
) -> dict[str, dict[str, float]]:
    """{strategy: {"ndcg@10": ...}} for the first stage alone and reranked by `reranker`'s
    cross-encoder over its `candidates` best, the collection split into passages as a new one is
    by default (the reranker reads each candidate's passages). Searched for 10 hits, so exactly
    `candidates` are reranked; recall@100 is the first stage's, of a search for 100."""
    reranked = f"{first}>rerank:{candidates}"
    retriever = Retriever(MemoryStore(), [first, reranked], reranker=reranker, show_progress=show_progress)
    retriever.index(dataset.corpus)
    alone = evaluate(retriever, dataset, [first], show_progress=show_progress)[0]
    top10 = {r.strategy: r for r in evaluate(retriever, dataset, [first, reranked], k=10, show_progress=show_progress)}
    return {
        name: {"ndcg@10": round(float(run.metrics["ndcg@10"]), 4), "p50_ms": round(run.latency_ms["p50"], 1)}
        | ({"recall@100": round(float(alone.metrics["recall@100"]), 4)} if name == first else {})
        for name, run in top10.items()
    }


def pick(metrics: Mapping[str, float]) -> dict[str, float]:
    return {m: round(float(metrics[m]), 4) for m in ("ndcg@10", "recall@100")}


def dims_table(scores: Scores, before: str, after: str) -> str:
    """Markdown: one row per dimension, the two models' nDCG@10 and the gain."""
    lines = [f"| dimensions | {before} nDCG@10 | {after} nDCG@10 | gain | {after} R@100 |", "|---|---|---|---|---|"]
    for dim in sorted(scores[after], reverse=True):
        b, a = scores[before][dim]["ndcg@10"], scores[after][dim]["ndcg@10"]
        lines.append(f"| {dim} | {b:.4f} | {a:.4f} | {a - b:+.4f} | {scores[after][dim]['recall@100']:.4f} |")
    return "\n".join(lines)


def plot_dims(scores: Scores, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, by_dim in scores.items():
        dims = sorted(by_dim)
        ax.plot(dims, [by_dim[d]["ndcg@10"] for d in dims], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(next(iter(scores.values()))))
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("dimensions kept (Matryoshka truncation)")
    ax.set_ylabel("nDCG@10")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
