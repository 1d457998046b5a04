"""Long documents: whole (cut at the model's window) against passages, beside the paragraph oracle,
on SciFact-long and the original SciFact, per store, in one run.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/long_documents.py [--data data/scifact]
        [--stores memory,qdrant-edge,qdrant-server,weaviate] [--sizes window,128,64]
        [--strategies dense,hybrid] [--per-document 8] [--original] [--output runs/long_documents.json]

SciFact-long (issue 39): the corpus shuffled (seed 0) and cut into documents of `--per-document`
abstracts, each abstract its title line then its text; variant "paragraphs" joins them with blank
lines, variant "sentences" with one space (no paragraph cue, only sentences). A long document's
grade for a query is the highest of its abstracts'. Rows, per store and variant:
  whole        Retriever(passages=False): each long document one vector, cut at 256 word pieces
  passages:N   Retriever(chunk_size=N) (window: the model's 254), a document's score its best
               passage's (MaxSim over its passage vectors; bm25:passages: BM25 of each passage)
  oracle       one vector per abstract (split where the abstracts are joined), a document's
               score its best abstract's: what splitting at the true boundaries gives (memory
               store; the same vectors on every store)
nDCG@10 and recall@100 are trec_eval's (pytrec_eval) at k=100; p50@100 is Retriever.search's at
k=100 (what evaluation asks), p50@10 at k=10 (what an application asks), both including the
best-passage location; bytes/doc: the searched vectors; index s: embedding (cached after the first
store) and upsert. `--original` adds the original SciFact, whole and in passages of each size.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import _bench
import numpy as np
from search_many import STORES, open_stores

from ragembed import DenseEmbedder, Document, MemoryStore, Retriever, Strategy, parse_strategy
from ragembed.embedders.sparse import BM25Embedder
from ragembed.evaluation import load_beir
from ragembed.evaluation.beir import BeirDataset
from ragembed.evaluation.metrics import ir_metrics, run_from_hits
from ragembed.evaluation.runner import evaluate
from ragembed.stores.base import VectorStore
from ragembed.types import Hit

JOINERS = {"paragraphs": "\n\n", "sentences": " "}


def scifact_long(data: BeirDataset, raw: dict[str, tuple[str, str]], per_document: int, joiner: str) -> tuple:
    """SciFact-long: the long documents, their qrels (the best grade of their abstracts), and which
    long document holds each abstract."""
    order = np.random.default_rng(0).permutation(len(data.corpus))
    ids = [data.corpus[i].id for i in order]
    docs, holder = [], {}
    for n, start in enumerate(range(0, len(ids), per_document)):
        group = ids[start : start + per_document]
        long_id = f"long-{n:04d}"
        docs.append(Document(long_id, joiner.join(f"{raw[i][0]}\n{raw[i][1]}".strip() for i in group)))
        holder.update(dict.fromkeys(group, long_id))
    qrels: dict[str, dict[str, int]] = {}
    for qid, judged in data.qrels.items():
        for doc, grade in judged.items():
            qrels.setdefault(qid, {})[holder[doc]] = max(grade, qrels.get(qid, {}).get(holder[doc], 0))
    return BeirDataset(f"scifact-long-{per_document}", data.split, docs, data.queries, qrels), holder


def read_raw(path: Path) -> dict[str, tuple[str, str]]:
    raw = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        raw[str(record["_id"])] = (record.get("title") or "", record["text"])
    return raw


def p50_at(retriever: Retriever, queries: list[str], strategy: str, k: int) -> float:
    _, timing = _bench.timed_each(partial(retriever.search, k=k, strategy=strategy), queries)
    return timing["p50_ms"]


def measured(
    label: str,
    store_name: str,
    variant: str,
    retriever: Retriever,
    data: BeirDataset,
    strategies: list[str],
    index_s: float,
) -> list[dict[str, Any]]:
    rows = []
    for run in evaluate(retriever, data, strategies, k=100, store_name=store_name):
        rows.append(
            {
                "data": variant,
                "store": store_name,
                "docs": label,
                "strategy": run.strategy,
                "ndcg@10": run.metrics["ndcg@10"],
                "recall@100": run.metrics["recall@100"],
                "bytes_per_doc": run.bytes_per_doc,
                "p50_100_ms": run.latency_ms["p50"],
                "p50_10_ms": p50_at(retriever, list(data.queries.values()), run.strategy, 10),
                "index_s": index_s,
            }
        )
        print(rows[-1], flush=True)
    return rows


def oracle(data: BeirDataset, abstracts: list[Document], holder: dict[str, str], dense: DenseEmbedder) -> dict:
    """One vector per abstract; a long document's score is its best abstract's (exact, memory)."""
    retriever = Retriever(MemoryStore(), "dense", embedder=dense, passages=False)
    retriever.index(abstracts)
    qids = list(data.queries)
    found = retriever.search_many([data.queries[q] for q in qids], k=1000)
    results: dict[str, list[Hit]] = {}
    for qid, hits in zip(qids, found):
        best: dict[str, float] = {}
        for h in hits:
            best.setdefault(holder[h.id], h.score)  # hits come best first
        ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:100]
        results[qid] = [Hit(doc, score) for doc, score in ranked]
    _, metrics = ir_metrics(run_from_hits(results), data.qrels, ["ndcg@10", "recall@100"])
    return {"docs": "oracle", "store": "memory", "strategy": "dense", **metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(_bench.SCIFACT))
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--sizes", default="window,128,64", help="passage sizes in word pieces; window: the model's")
    parser.add_argument("--strategies", default="dense,hybrid")
    parser.add_argument("--per-document", type=int, default=8)
    parser.add_argument("--variants", default=",".join(JOINERS))
    parser.add_argument("--original", action="store_true", help="also the original SciFact, whole and in passages")
    parser.add_argument("--output", default="runs/long_documents.json")
    args = parser.parse_args()
    names, strategies = args.stores.split(","), args.strategies.split(",")
    unknown = set(names) - set(STORES)
    if unknown:
        parser.error(f"unknown stores {sorted(unknown)}; choose from {STORES}")
    sizes: list[int | None] = [None if s == "window" else int(s) for s in args.sizes.split(",")]
    data = load_beir(args.data, "test")
    raw = read_raw(Path(args.data) / "corpus.jsonl")
    dense, bm25 = DenseEmbedder(show_progress=True), BM25Embedder()
    sets: list[tuple[str, BeirDataset, dict[str, str] | None]] = []
    for variant in args.variants.split(","):
        long, holder = scifact_long(data, raw, args.per_document, JOINERS[variant])
        sets.append((f"scifact-long ({variant})", long, holder))
    if args.original:
        sets.append(("scifact", data, None))
    rows: list[dict[str, Any]] = []
    for label, dataset, holder in sets:
        if holder is not None:
            rows.append({"data": label, **oracle(dataset, data.corpus, holder, dense)})
            print(rows[-1], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        makers, servers = open_stores(names, Path(tmp))
        try:
            for store_name, make in makers.items():
                for label, dataset, _ in sets:
                    configs: list[tuple[str, dict[str, Any]]] = [("whole", {"passages": False})]
                    configs += [(f"passages:{s or 'window'}", {"chunk_size": s or "window"}) for s in sizes]
                    for docs_label, settings in configs:
                        embedders = {"embedder": dense, "sparse_embedder": bm25}
                        rows += index_and_measure(
                            make, store_name, label, docs_label, dataset, strategies, embedders, settings
                        )
        finally:
            for server in servers:
                server.stop()
    print(f"\n{_bench.machine()}; k=100 for the metrics and p50@100, k=10 for p50@10")
    print(
        _bench.table(
            rows,
            [
                ("data", "data", ""),
                ("store", "store", ""),
                ("docs", "documents", ""),
                ("strategy", "strategy", ""),
                ("ndcg@10", "nDCG@10", ".4f"),
                ("recall@100", "R@100", ".4f"),
                ("bytes_per_doc", "bytes/doc", ",.0f"),
                ("index_s", "index s", ".1f"),
                ("p50_10_ms", "p50@10 ms", ".2f"),
                ("p50_100_ms", "p50@100 ms", ".2f"),
            ],
        )
    )
    _bench.write_json(args.output, {"per_document": args.per_document, "rows": rows})


def servable(strategy: Strategy, store: VectorStore, whole: bool) -> bool:
    """Whether the store serves the strategy over whole documents (whole) or passages."""
    if not set(strategy.kinds) <= store.capabilities.kinds:
        return False
    if whole:
        return not strategy.needs_passages
    return strategy.passage_refusal(store.capabilities) is None


def index_and_measure(
    make: Callable[[], VectorStore],
    store_name: str,
    label: str,
    docs_label: str,
    dataset: BeirDataset,
    strategies: list[str],
    embedders: dict[str, Any],
    settings: dict[str, Any],
) -> list[dict[str, Any]]:
    store = make()
    if store.schema is not None:
        store.drop()  # a fresh collection for each configuration
    whole = settings.get("passages") is False
    served = [s for s in strategies if servable(parse_strategy(s), store, whole)]
    retriever = Retriever(store, served, **embedders, **settings)
    started = time.perf_counter()
    retriever.index(dataset.corpus)
    index_s = time.perf_counter() - started
    try:
        return measured(docs_label, store_name, label, retriever, dataset, served, index_s)
    finally:
        if store_name in ("qdrant-server", "weaviate"):
            store.drop()
        store.close()


if __name__ == "__main__":
    main()
