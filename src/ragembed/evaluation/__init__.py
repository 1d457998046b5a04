"""Evaluation: BEIR data, trec_eval-exact IR metrics, RAGAS context metrics, reports."""

from ragembed.evaluation.beir import BeirDataset, load_beir, sample
from ragembed.evaluation.metrics import ir_metrics, run_from_hits
from ragembed.evaluation.runner import StrategyRun, evaluate

__all__ = ["BeirDataset", "StrategyRun", "evaluate", "ir_metrics", "load_beir", "run_from_hits", "sample"]
