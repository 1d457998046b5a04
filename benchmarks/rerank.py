"""SciFact test (300 queries, the whole corpus): first stages alone and reranked by trained
cross-encoders over 10, 20, 50 and 100 candidates, in one run (issue 40).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/rerank.py --reranker runs/reranker
        [--reranker runs/another] [--first hybrid,dense] [--candidates 10,20,50,100]
        [--colbert-model runs/colbert] [--store qdrant-edge] [--queries N] [--output runs/rerank.json]

One collection (split into passages, the default) on the chosen store holds every first stage's
fields. Each row searches every query one at a time for 10 hits (`ragembed.evaluation.evaluate`,
the code `ragembed eval` runs, query embeddings computed before timing), so a reranked row
reranks exactly its candidates; a first stage's recall@100 comes from a search for 100. With
--colbert-model, the same first stages are also reranked by ColBERT MaxSim over the stored
tokens of that model (`>colbert`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import _bench

from ragembed import ColBERTEmbedder, CrossEncoderReranker, Retriever, open_store
from ragembed.evaluation import evaluate, load_beir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(_bench.SCIFACT))
    parser.add_argument("--reranker", action="append", required=True, help="a cross-encoder folder (repeatable)")
    parser.add_argument("--first", default="hybrid,dense", help="first stages, comma-separated")
    parser.add_argument("--candidates", default="10,20,50,100")
    parser.add_argument("--colbert-model", help="a trained PyLate ColBERT folder: also rerank by its MaxSim")
    parser.add_argument("--store", default="qdrant-edge", choices=["qdrant-edge", "memory"])
    parser.add_argument("--queries", type=int, help="only the first N queries, over the whole corpus (a quick look)")
    parser.add_argument("--output", default="runs/rerank.json")
    args = parser.parse_args()
    firsts = [s.strip() for s in args.first.split(",") if s.strip()]
    counts = [int(c) for c in args.candidates.split(",")]

    dataset = load_beir(args.data, "test")
    if args.queries:
        kept = list(dataset.queries)[: args.queries]
        dataset = replace(
            dataset, queries={q: dataset.queries[q] for q in kept}, qrels={q: dataset.qrels[q] for q in kept}
        )
    rows = []
    with tempfile.TemporaryDirectory(prefix="ragembed-rerank-") as folder:
        uri = f"qdrant-edge:{Path(folder) / 'index'}" if args.store == "qdrant-edge" else "memory"
        colbert = ["colbert"] if args.colbert_model else []
        embedders = {"multivector_embedder": ColBERTEmbedder(args.colbert_model)} if args.colbert_model else {}
        indexer = Retriever(open_store(uri), firsts + colbert, **embedders)
        started = time.perf_counter()
        indexer.index(dataset.corpus)
        print(f"indexed {len(dataset.corpus)} documents in {time.perf_counter() - started:.0f} s")
        for first in firsts:
            recall = evaluate(indexer, dataset, [first])[0].metrics["recall@100"]
            run = evaluate(indexer, dataset, [first], k=10)[0]
            rows.append(row(first, "-", 0, run, recall))
        for path in args.reranker:
            retriever = Retriever(indexer.store, firsts, reranker=CrossEncoderReranker(path), **embedders)
            for first in firsts:
                for n in counts:
                    (run,) = evaluate(retriever, dataset, [f"{first}>rerank:{n}"], k=10)
                    rows.append(row(first, path, n, run))
                    print(_bench.table(rows[-1:], COLUMNS).splitlines()[-1], flush=True)
        if args.colbert_model:
            for first in firsts:
                for n in counts:
                    (run,) = evaluate(indexer, dataset, [f"{first}>colbert:{n}"], k=10)
                    rows.append(row(first, f"MaxSim {args.colbert_model}", n, run))
    print(f"\nSciFact test, {len(dataset.queries)} queries, {len(dataset.corpus)} documents, {args.store}\n")
    print(_bench.table(rows, COLUMNS))
    _bench.write_json(args.output, {"store": args.store, "queries": len(dataset.queries), "rows": rows})


COLUMNS = [
    ("first", "first stage", "s"),
    ("reranker", "reranker", "s"),
    ("candidates", "candidates", "d"),
    ("ndcg@10", "nDCG@10", ".4f"),
    ("recall@100", "R@100", ".4f"),
    ("p50_ms", "p50 ms", ".1f"),
    ("p95_ms", "p95 ms", ".1f"),
]


def row(first: str, reranker: str, candidates: int, run, recall: float | None = None) -> dict:
    return {
        "first": first,
        "reranker": reranker,
        "candidates": candidates,
        "ndcg@10": run.metrics["ndcg@10"],
        "recall@100": recall,
        "p50_ms": run.latency_ms["p50"],
        "p95_ms": run.latency_ms["p95"],
    }


if __name__ == "__main__":
    main()
