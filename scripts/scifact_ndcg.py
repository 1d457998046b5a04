"""nDCG@10 and Recall@100 of every strategy on BEIR SciFact (full corpus), with trec_eval.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/scifact_ndcg.py [--data data/scifact]
        [--split test] [--strategy dense --strategy bm25 ...] [--colbert] [--output runs/scifact.json]

Encoding the 5,183 abstracts takes minutes on a CPU the first time; the embeddings cache makes
later runs fast. Published references: all-MiniLM-L6-v2 0.64508 (MTEB), BM25 0.68736 (bm25s, MTEB).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ragembed import MemoryStore, Retriever
from ragembed.cli import quiet_model_loading
from ragembed.evaluation import evaluate_run, load_beir, run_from_hits

DEFAULT_STRATEGIES = ["dense", "int8", "binary", "funnel:64", "matryoshka:64", "bm25", "hybrid"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / "data/scifact"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--strategy", action="append", help=f"default: {' '.join(DEFAULT_STRATEGIES)}")
    parser.add_argument("--colbert", action="store_true", help="also colbert (untrained 128-d head on MiniLM)")
    parser.add_argument("--output", default="runs/scifact.json")
    args = parser.parse_args()
    quiet_model_loading()

    data = load_beir(args.data, args.split)
    strategies = args.strategy or DEFAULT_STRATEGIES + (["colbert"] if args.colbert else [])
    retriever = Retriever(MemoryStore(), strategies, show_progress=True)
    started = time.perf_counter()
    retriever.index(data.corpus)
    print(f"indexed {len(data.corpus)} documents in {time.perf_counter() - started:.1f} s")

    qids = list(data.queries)
    rows = []
    for name in retriever.strategies:
        started = time.perf_counter()
        results = retriever.search_many([data.queries[q] for q in qids], k=100, strategy=name)
        seconds = time.perf_counter() - started
        metrics = evaluate_run(run_from_hits(dict(zip(qids, results))), data.qrels)
        rows.append({"strategy": name, "ndcg@10": metrics["ndcg_cut_10"], "recall@100": metrics["recall_100"],
                     "ms_per_query": 1000 * seconds / len(qids)})

    dense = next((r["ndcg@10"] for r in rows if r["strategy"] == "dense"), None)
    print(f"\nSciFact {args.split}: {len(qids)} queries, {len(data.corpus)} documents")
    print(f"{'strategy':<16}{'nDCG@10':>9}{'x dense':>9}{'R@100':>8}{'ms/query':>10}")
    for r in rows:
        ratio = f"{r['ndcg@10'] / dense:.3f}" if dense else "-"
        print(f"{r['strategy']:<16}{r['ndcg@10']:>9.4f}{ratio:>9}{r['recall@100']:>8.4f}{r['ms_per_query']:>10.1f}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"dataset": "scifact", "split": args.split, "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
