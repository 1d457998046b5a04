"""Evaluation: BEIR-format data and trec_eval-exact IR metrics."""

from ragembed.evaluation.beir import BeirDataset, load_beir
from ragembed.evaluation.metrics import evaluate_run, run_from_hits

__all__ = ["BeirDataset", "evaluate_run", "load_beir", "run_from_hits"]
