"""IR metrics with trec_eval's own code (pytrec_eval), not a home-made nDCG.

A run is passed to trec_eval with scores that encode the retriever's rank (n - rank), so
trec_eval scores exactly the order the retriever returned: its own tie-breaking (by document id)
never reorders tied scores, such as reciprocal-rank-fusion ties.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ragembed.errors import MissingDependencyError
from ragembed.types import Hit

Run = dict[str, dict[str, float]]


def run_from_hits(results: Mapping[str, Sequence[Hit]]) -> Run:
    return {qid: {h.id: float(len(hits) - rank) for rank, h in enumerate(hits)} for qid, hits in results.items()}


def evaluate_run(run: Run, qrels: Mapping[str, Mapping[str, int]],
                 measures: Sequence[str] = ("ndcg_cut.10", "recall.100", "recip_rank", "map_cut.100")
                 ) -> dict[str, float]:
    """Mean of each trec_eval measure over the judged queries (queries absent from run score 0)."""
    try:
        import pytrec_eval
    except ImportError as exc:
        raise MissingDependencyError.for_extra("pytrec-eval-terrier", "eval") from exc
    full_run = {qid: run.get(qid) or {"__none__": 0.0} for qid in qrels}
    evaluator = pytrec_eval.RelevanceEvaluator({q: dict(d) for q, d in qrels.items()}, set(measures))
    per_query = evaluator.evaluate(full_run)
    keys = next(iter(per_query.values())).keys()
    return {key: sum(q[key] for q in per_query.values()) / len(per_query) for key in keys}
