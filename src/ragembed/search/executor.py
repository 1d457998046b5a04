"""Search control flow written once for a synchronous and an asynchronous engine client.

How a plan becomes engine queries (run its stages one by one, ask again while the cut-off score is
tied, fuse rankings) is the same whether the client blocks or awaits. So it is written here as
generators that do no I/O ("sans-IO"): a `Steps` generator yields a batch of independent engine
queries, is sent back their hits in the same order, and returns its answer. `run` drives one with
a blocking client, `arun` with an async one; an adapter supplies only `send`, which runs a batch
(one request where the engine has a batch call, or all at once). Independent stages, such as the
rankings a fusion combines, go out in the same batch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from ragembed.search.plan import Fusion, Plan, Rescore, VectorSearch
from ragembed.search.ranking import ordered_hits, reciprocal_rank_fusion
from ragembed.types import Hit

R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True)
class Ask(Generic[R]):
    """One engine query: `request` (the adapter's own description of it) for `limit` hits."""

    request: R
    limit: int


Steps = Generator[list[Ask[Any]], list[list[Hit]], T]
Send = Callable[[list[Ask[Any]]], list[list[Hit]]]
AsyncSend = Callable[[list[Ask[Any]]], Awaitable[list[list[Hit]]]]


def run(steps: Steps[T], send: Send) -> T:
    """Drive `steps` with a blocking `send`."""
    try:
        batch = next(steps)
        while True:
            batch = steps.send(send(batch))
    except StopIteration as done:
        result: T = done.value
        return result


async def arun(steps: Steps[T], send: AsyncSend) -> T:
    """Drive `steps` with an async `send`."""
    try:
        batch = next(steps)
        while True:
            batch = steps.send(await send(batch))
    except StopIteration as done:
        result: T = done.value
        return result


def together(all_steps: Sequence[Steps[T]]) -> Steps[list[T]]:
    """Run several Steps side by side: each round sends what all of them ask in one batch."""
    results: list[Any] = [None] * len(all_steps)
    pending: dict[int, list[Ask[Any]]] = {}
    for i, steps in enumerate(all_steps):
        try:
            pending[i] = next(steps)
        except StopIteration as done:
            results[i] = done.value
    while pending:
        answers = yield [ask for asks in pending.values() for ask in asks]
        position, still = 0, {}
        for i, asks in pending.items():
            part, position = answers[position : position + len(asks)], position + len(asks)
            try:
                still[i] = all_steps[i].send(part)
            except StopIteration as done:
                results[i] = done.value
        pending = still
    return results


def with_ties(request: R, limit: int) -> Steps[list[Hit]]:
    """The top `limit` hits of `request`, asking for more while the cut-off score is tied, so that
    ties are decided by document id (ordered_hits), not by the engine's internal order."""
    asked = limit + 8
    while True:
        (hits,) = yield [Ask(request, asked)]
        if len(hits) < asked or len(hits) <= limit or hits[-1].score < hits[limit - 1].score:
            return ordered_hits(hits, limit)
        asked *= 4


def fetch_with_ties(query: Callable[[int], list[Hit]], limit: int) -> list[Hit]:
    """`with_ties` for a blocking query that takes only the number of hits to return."""
    return run(with_ties(None, limit), lambda asks: [query(ask.limit) for ask in asks])


# Candidate stages return ids and scores only; the documents of the hits a search returns are
# read once (with_documents): engines parse a point's whole payload to return any part of it
# (docs/benchmarks.md, "Candidate stages without their documents").
StageQuery = Callable[[Plan, Any, bool], Steps[list[Hit]]]
Fetch = Callable[[list[str]], Steps[list[Hit]]]


def with_documents(hits: list[Hit], fetch: Fetch) -> Steps[list[Hit]]:
    """Id-and-score `hits` with their documents (text, metadata, passage map) read by `fetch`
    (the documents of some ids, in any order): their order and scores kept, a document deleted
    meanwhile left out."""
    if not hits:
        return hits
    found = {h.id: h for h in (yield from fetch([h.id for h in hits]))}
    return [replace(found[h.id], score=h.score) for h in hits if h.id in found]


def by_stage(
    plan: Plan, where: Any, query: StageQuery, restrict: Callable[[Any, list[str]], Any], fetch: Fetch
) -> Steps[list[Hit]]:
    """Run `plan` a stage at a time under the engine filter `where`: each candidate stage ranks
    the whole collection in a query of its own (`query(stage, where, False)`: ids and scores
    only), the stage above is restricted to their candidates by id (`restrict(where, ids)`), and
    fusions are fused here by ragembed's RRF, the fused hits' documents then read by `fetch`.
    Sibling stages go out together."""
    return (yield from _by_stage(plan, where, query, restrict, fetch, documents=True))


def _by_stage(
    plan: Plan, where: Any, query: StageQuery, restrict: Callable[[Any, list[str]], Any], fetch: Fetch, documents: bool
) -> Steps[list[Hit]]:
    """by_stage, the hits with their documents (`documents`) or with ids and scores only."""
    if isinstance(plan, Fusion):
        stages = [_by_stage(stage, where, query, restrict, fetch, documents=False) for stage in plan.prefetch]
        rankings = yield from together(stages)
        fused = reciprocal_rank_fusion(rankings, plan.limit, plan.rrf_k, plan.weights)
        return (yield from with_documents(fused, fetch)) if documents else fused
    if not isinstance(plan, (VectorSearch, Rescore)) or not plan.prefetch:  # one engine query
        return (yield from query(plan, where, documents))
    stages = [_by_stage(stage, where, query, restrict, fetch, documents=False) for stage in plan.prefetch]
    candidates = yield from together(stages)
    pool = sorted({h.id for stage in candidates for h in stage})
    if not pool:
        return []
    return (yield from query(replace(plan, prefetch=()), restrict(where, pool), documents))
