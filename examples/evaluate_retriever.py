"""Evaluate retrieval strategies on BEIR SciFact with trec_eval metrics and RAGAS context
metrics, and write a report (markdown, JSON, plots).

    .venv/bin/python examples/evaluate_retriever.py [--queries 50] [--output example-report]
"""

import argparse

from _data import SCIFACT

from ragembed import Retriever
from ragembed.evaluation import evaluate, load_beir, sample
from ragembed.evaluation.report import choice_table, write_report

parser = argparse.ArgumentParser()
parser.add_argument("--queries", type=int, default=50, help="a sample of N test queries (and a corpus sample)")
parser.add_argument("--output", default="example-report")
args = parser.parse_args()

dataset = sample(load_beir(SCIFACT, "test"), args.queries)
strategies = ["dense", "binary", "bm25", "hybrid"]
retriever = Retriever("memory", strategies)
retriever.index(dataset.corpus)
runs = evaluate(retriever, dataset, strategies, k=100)
print(choice_table(runs))
print("report:", write_report(args.output, dataset, runs) / "report.md")
