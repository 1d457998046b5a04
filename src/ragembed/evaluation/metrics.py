"""IR metrics with trec_eval's own code (pytrec_eval), not a home-made nDCG.

Names and their trec_eval measures (k is any cut-off):
  ndcg@k       ndcg_cut.k
  recall@k     recall.k
  precision@k  P.k
  map@k        map_cut.k
  mrr@k        recip_rank on the run truncated to its top k (trec_eval's recip_rank has no cut-off)
  hit_rate@k   success.k (1 if any relevant document is in the top k)

A run is passed to trec_eval with scores that encode the retriever's rank (n - rank), so
trec_eval scores exactly the order the retriever returned: its own tie-breaking (by document id)
never reorders tied scores, such as reciprocal-rank-fusion ties. Queries without results score 0.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence

from ragembed.errors import InvalidInputError, MissingDependencyError
from ragembed.types import Hit

Run = dict[str, dict[str, float]]
Qrels = Mapping[str, Mapping[str, int]]
DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100", "precision@10", "hit_rate@10")
TREC_MEASURE = {"ndcg": "ndcg_cut", "recall": "recall", "precision": "P", "map": "map_cut", "hit_rate": "success"}
METRIC_NAME = re.compile(r"^(ndcg|recall|precision|map|mrr|hit_rate)@([1-9][0-9]*)$")


def check_qrels(qrels: Qrels) -> dict[str, dict[str, int]]:
    """qrels as {query id: {document id: int grade}}: numpy integers and whole floats (what pandas
    gives) become ints; anything else is an InvalidInputError naming the judgment."""
    if not isinstance(qrels, Mapping):
        raise InvalidInputError(
            f"qrels must be a mapping {{query id: {{document id: grade}}}}, got {type(qrels).__name__}"
        )
    checked: dict[str, dict[str, int]] = {}
    for qid, judged in qrels.items():
        if not isinstance(qid, str) or not isinstance(judged, Mapping) or not judged:
            raise InvalidInputError(
                f"qrels[{qid!r}] must map a string query id to a non-empty {{document id: grade}} mapping"
            )
        checked[qid] = {}
        for doc_id, grade in judged.items():
            if not isinstance(doc_id, str):
                raise InvalidInputError(f"qrels[{qid!r}]: document id {doc_id!r} is not a string; use str(id)")
            checked[qid][doc_id] = relevance_grade(grade, f"qrels[{qid!r}][{doc_id!r}]")
    if not checked:
        raise InvalidInputError("qrels is empty: give at least one judged query")
    return checked


def relevance_grade(grade: object, what: str) -> int:
    if not isinstance(grade, bool):  # True is an Integral at run time, which typeshed does not know
        if isinstance(grade, numbers.Integral):
            return int(grade)
        if isinstance(grade, numbers.Real):
            value = float(grade)
            if math.isfinite(value) and value.is_integer():
                return int(value)
    raise InvalidInputError(
        f"{what}: relevance grade {grade!r} ({type(grade).__name__}) is not a whole number; grades are "
        "integers, 0 for not relevant and 1, 2, ... for relevant (convert text with int(...))"
    )


def run_from_hits(results: Mapping[str, Sequence[Hit]]) -> Run:
    return {qid: {h.id: float(len(hits) - rank) for rank, h in enumerate(hits)} for qid, hits in results.items()}


def ir_metrics(
    run: Run, qrels: Qrels, metrics: Iterable[str] = DEFAULT_METRICS
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """(per query {qid: {metric: value}}, mean {metric: value}) over the judged queries."""
    try:
        import pytrec_eval
    except ImportError as exc:
        raise MissingDependencyError.for_extra("pytrec-eval-terrier", "eval") from exc
    parsed = [(name, *_parse(name)) for name in metrics]
    judged = check_qrels(qrels)
    full_run = {qid: run.get(qid) or {"__no_result__": 0.0} for qid in judged}
    per_query: dict[str, dict[str, float]] = {qid: {} for qid in judged}

    plain = [(n, f"{TREC_MEASURE[m]}.{k}", f"{TREC_MEASURE[m]}_{k}") for n, m, k in parsed if m != "mrr"]
    if plain:
        scores = pytrec_eval.RelevanceEvaluator(judged, {measure for _, measure, _ in plain}).evaluate(full_run)
        for qid, values in scores.items():
            for name, _, key in plain:
                per_query[qid][name] = values[key]
    for name, _, k in (p for p in parsed if p[1] == "mrr"):
        truncated = {qid: dict(sorted(docs.items(), key=lambda item: -item[1])[:k]) for qid, docs in full_run.items()}
        for qid, values in pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"}).evaluate(truncated).items():
            per_query[qid][name] = values["recip_rank"]
    mean = {name: sum(q[name] for q in per_query.values()) / len(per_query) for name, _, _ in parsed}
    return per_query, mean


def _parse(name: str) -> tuple[str, int]:
    match = METRIC_NAME.match(name)
    if not match:
        raise InvalidInputError(
            f"unknown metric {name!r}; use ndcg@k, recall@k, precision@k, map@k, mrr@k or hit_rate@k"
        )
    return match.group(1), int(match.group(2))
