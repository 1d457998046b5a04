"""Run a retriever's strategies over a BEIR dataset: quality, latency and bytes per document.

Evaluation sees only a Retriever (or any object with the same `search`), so LlamaIndex
retrievers and peers' systems can be scored the same way.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ragembed.evaluation.beir import BeirDataset
from ragembed.evaluation.metrics import DEFAULT_METRICS, ir_metrics, run_from_hits
from ragembed.evaluation.ragas_metrics import ragas_context_metrics
from ragembed.retriever import Retriever
from ragembed.search.schema import VectorField
from ragembed.strategies import parse_strategy, passage_embeddings
from ragembed.types import (
    EmbeddingKind,
    Hit,
    MultiVectorEmbeddings,
    Precision,
    SparseEmbeddings,
    SparsePassageEmbeddings,
    narrow,
)


@dataclass
class StrategyRun:
    strategy: str
    store: str
    metrics: dict[str, float]
    latency_ms: dict[str, float]
    bytes_per_doc: float
    per_query: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)

    def to_dict(self, with_per_query: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not with_per_query:
            data.pop("per_query")
        return data


def evaluate(
    retriever: Retriever,
    dataset: BeirDataset,
    strategies: list[str] | None = None,
    *,
    k: int = 100,
    store_name: str = "",
    show_progress: bool = False,
) -> list[StrategyRun]:
    """Search every judged query, one at a time, with each strategy; score the rankings.

    Latency is per query through `retriever.search`, with query embeddings computed beforehand
    (served from the embeddings cache; with cache=False embedders they are encoded again)."""
    names = strategies or list(retriever.strategies)
    qids = list(dataset.queries)
    texts = {d.id: d.text for d in dataset.corpus}
    stats = corpus_stats(retriever, dataset, names)
    runs = []
    for name in names:
        strategy = parse_strategy(name)
        # Query embeddings first, so every strategy's latency is the search alone (and the first
        # strategy does not pay for encoding the queries the others share).
        for embedder in strategy.needs:
            retriever.embedder(embedder).embed_queries(list(dataset.queries.values()))
        retriever.search(dataset.queries[qids[0]], k=k, strategy=name)  # warm-up
        results: dict[str, list[Hit]] = {}
        latencies = []
        for qid in tqdm(qids, desc=f"evaluate {strategy.name}", unit="query", disable=not show_progress):
            started = time.perf_counter()
            results[qid] = retriever.search(dataset.queries[qid], k=k, strategy=name)
            latencies.append(1000 * (time.perf_counter() - started))
        per_query, mean = ir_metrics(run_from_hits(results), dataset.qrels, DEFAULT_METRICS)
        mean.update(ragas_context_metrics(results, dataset.qrels, texts, k=10))
        size = sum(field_bytes(f, stats) for f in retriever.searched_fields(strategy))
        runs.append(
            StrategyRun(
                strategy.name,
                store_name,
                mean,
                {"p50": statistics.median(latencies), "p95": float(np.percentile(latencies, 95))},
                size,
                per_query,
            )
        )
    return runs


def corpus_stats(retriever: Retriever, dataset: BeirDataset, strategies: list[str]) -> dict[str, float]:
    """Average sparse terms, ColBERT tokens or passages per document as the collection holds them,
    by embedder (for bytes per document); BM25's terms over a document's passages, where a
    per-passage field holds them, under `passage_embeddings(name)`."""
    used = {name: kind for s in strategies for name, kind in parse_strategy(s).embedders.items()}
    texts = [d.text for d in dataset.corpus]
    stats = {}
    for name in used:
        held = retriever.document_embeddings(name, texts)
        if isinstance(held, SparseEmbeddings):
            stats[name] = float(np.mean([len(i) for i in held.indices]))
        elif isinstance(held, MultiVectorEmbeddings):  # tokens, or a dense model's passages
            stats[name] = float(np.mean([len(v) for v in held.vectors]))
    for f in {f.name: f for s in strategies for f in retriever.searched_fields(s)}.values():
        if f.per_passage and f.kind is EmbeddingKind.SPARSE:
            sets = narrow(retriever.document_embeddings(f.source, texts, passages=True), SparsePassageEmbeddings)
            stats[passage_embeddings(f.source)] = float(np.mean([sum(map(len, s.indices)) for s in sets.passages]))
    return stats


BYTES_PER_DIM = {Precision.FLOAT32: 4, Precision.INT8: 1, Precision.BINARY: 1 / 8}


def field_bytes(f: VectorField, stats: dict[str, float]) -> float:
    """Bytes per document of one field as searched: float32 4 per dim, int8 1, binary 1/8; sparse 8
    per term (uint32 index + float32 value); multi-vector per dim per token or passage, as its
    datatype keeps it (float32 4, float16 2, turbo8 1, turbo4 1/2) or as its quantized index does.
    `stats`: terms, tokens or passages per document, by embedder (terms of its passages: by
    `passage_embeddings(embedder)`)."""
    if f.kind is EmbeddingKind.SPARSE:
        return 8 * stats[passage_embeddings(f.source) if f.per_passage else f.source]
    if f.kind is EmbeddingKind.MULTIVECTOR:
        per_dim = f.datatype.bits / 8 if f.precision is Precision.FLOAT32 else BYTES_PER_DIM[f.precision]
        return per_dim * f.dim * stats[f.source]
    return f.dim * BYTES_PER_DIM[f.precision]
