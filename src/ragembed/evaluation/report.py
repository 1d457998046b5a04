"""Evaluation reports: report.json (machine-readable), report.md (for a person) and PNG plots.

Plots (matplotlib, no display needed):
  quality_vs_bytes.png      nDCG@10 against bytes per document (log scale), one point per strategy
  quality_vs_dimension.png  nDCG@10 against Matryoshka dimension (truncated, and funnel-rescored)
  latency.png               p50 latency per strategy, with p95 as the whisker
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragembed.evaluation.beir import BeirDataset
from ragembed.evaluation.ragas_metrics import LLM_SKIPPED
from ragembed.evaluation.runner import StrategyRun

TABLE_METRICS = ["ndcg@10", "recall@100", "mrr@10", "map@100", "context_precision", "context_recall"]


def report_dict(dataset: BeirDataset, runs: Sequence[StrategyRun], **extra: Any) -> dict[str, Any]:
    return {
        "dataset": dataset.name,
        "split": dataset.split,
        "n_queries": len(dataset.queries),
        "n_docs": len(dataset.corpus),
        "runs": [r.to_dict() for r in runs],
        "notes": [LLM_SKIPPED],
        **extra,
    }


def choice_table(runs: Sequence[StrategyRun]) -> str:
    """The "which should you choose" table, as plain text."""
    width = max([16, *(len(r.strategy) + 2 for r in runs)])
    lines = [f"{'strategy':<{width}}{'nDCG@10':>9}{'R@100':>8}{'bytes/doc':>11}{'p50 ms':>9}", "-" * (width + 37)]
    for r in sorted(runs, key=lambda r: -r.metrics["ndcg@10"]):
        lines.append(
            f"{r.strategy:<{width}}{r.metrics['ndcg@10']:>9.4f}{r.metrics['recall@100']:>8.4f}"
            f"{r.bytes_per_doc:>11,.0f}{r.latency_ms['p50']:>9.2f}"
        )
    return "\n".join(lines)


def write_report(output: str | Path, dataset: BeirDataset, runs: Sequence[StrategyRun], **extra: Any) -> Path:
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    data = report_dict(dataset, runs, **extra)
    (folder / "report.json").write_text(json.dumps(data, indent=1))
    plots = write_plots(folder, runs)
    (folder / "report.md").write_text(markdown(data, runs, plots))
    return folder


def markdown(data: dict[str, Any], runs: Sequence[StrategyRun], plots: Sequence[str]) -> str:
    lines = [
        f"# Retrieval evaluation: {data['dataset']} ({data['split']})",
        "",
        f"{data['n_queries']} queries over {data['n_docs']} documents"
        + (f", store `{runs[0].store}`" if runs and runs[0].store else "")
        + ".",
        "",
        "| strategy | " + " | ".join(TABLE_METRICS) + " | bytes/doc | p50 ms | p95 ms |",
        "|---|" + "---|" * (len(TABLE_METRICS) + 3),
    ]
    for r in sorted(runs, key=lambda r: -r.metrics["ndcg@10"]):
        cells = [f"{r.metrics[m]:.4f}" for m in TABLE_METRICS]
        lines.append(
            f"| `{r.strategy}` | "
            + " | ".join(cells)
            + f" | {r.bytes_per_doc:,.0f} | {r.latency_ms['p50']:.2f} | {r.latency_ms['p95']:.2f} |"
        )
    lines += [
        "",
        "nDCG, recall, MRR and MAP are trec_eval's (pytrec_eval); context precision/recall are RAGAS's "
        "ID-based metrics on the top 10. Bytes per document count the vectors searched in memory "
        "(rescoring vectors can stay on disk). Latency is per query, one at a time, through Retriever.search, "
        "with query embeddings already computed (a cold MiniLM query encoding adds about 17 ms on 2 CPU "
        "cores).",
        "",
    ]
    lines += [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    lines += ["", "Notes:"] + [f"- {n}" for n in data["notes"]]
    return "\n".join(lines) + "\n"


def write_plots(folder: Path, runs: Sequence[StrategyRun]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in runs:
        ax.scatter(r.bytes_per_doc, r.metrics["ndcg@10"], s=40)
        ax.annotate(
            r.strategy, (r.bytes_per_doc, r.metrics["ndcg@10"]), textcoords="offset points", xytext=(5, 4), fontsize=8
        )
    ax.set(
        xscale="log", xlabel="bytes per document searched (log scale)", ylabel="nDCG@10", title="Quality against memory"
    )
    ax.grid(alpha=0.3)
    written.append(_save(fig, folder / "quality_vs_bytes.png"))

    series: dict[str, list[tuple[int, float]]] = {}
    full = next((r for r in runs if r.strategy == "dense"), None)
    for r in runs:
        match = re.match(r"(matryoshka|funnel):(\d+)$", r.strategy)
        if match:
            series.setdefault(match.group(1), []).append((int(match.group(2)), r.metrics["ndcg@10"]))
    if series:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ticks = set()
        for label, points in sorted(series.items()):
            if full is not None:  # the full-dimension dense run ends both lines
                points.append((int(full.bytes_per_doc // 4), full.metrics["ndcg@10"]))
            points.sort()
            ticks |= {p[0] for p in points}
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                marker="o",
                label="truncated" if label == "matryoshka" else "funnel (rescored at full dimension)",
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(ticks), [str(t) for t in sorted(ticks)])
        ax.set(xlabel="Matryoshka dimension", ylabel="nDCG@10", title="Quality against dimension")
        ax.legend()
        ax.grid(alpha=0.3)
        written.append(_save(fig, folder / "quality_vs_dimension.png"))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = [r.strategy for r in runs]
    p50 = [r.latency_ms["p50"] for r in runs]
    p95 = [r.latency_ms["p95"] for r in runs]
    ax.bar(names, p50, yerr=[[0] * len(runs), [b - a for a, b in zip(p50, p95)]], capsize=4)
    ax.set(ylabel="milliseconds per query", title="Latency: p50 (bar) and p95 (whisker)")
    ax.tick_params(axis="x", rotation=30)
    written.append(_save(fig, folder / "latency.png"))
    return written


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return str(path)
