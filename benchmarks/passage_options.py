"""The passage designs issue 39 asks to measure beside the one ragembed ships, in one run, exact
(numpy and the memory store, no engine): on SciFact-long (both variants) and the original SciFact.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/passage_options.py [--data data/scifact]
        [--per-document 8] [--pools 100,200] [--output runs/passage_options.json]

Rows, nDCG@10 and recall@100 (trec_eval's, pytrec_eval) and vectors per document:
  dense passages:128       what ragembed ships: a document's score is its best 128-word-piece
                           passage's cosine (MaxSim of the query's one vector over them)
  dense sets               several granularities in one MaxSim set: 128-word-piece passages with
                           the whole document's vector (cut at the window), with 64-word-piece
                           passages, and all three
  bm25 whole / passages    BM25 over the whole text (what `bm25` does) against BM25 over passages
                           (`bm25:passages`: IDF over passages, each normalised against the average
                           passage; a document's score its best passage's), and the latter fused
                           with dense passages by RRF (a hybrid over passage BM25)
  first stage              a single vector per document that an engine's HNSW could search, its
                           best `pool` candidates rescored by exact passage MaxSim: the mean of the
                           passage vectors, and MUVERA encodings of them (fastembed's, three
                           shapes); "top-10 kept" is the share of exact MaxSim's top 10 among the
                           candidates. A first stage like this is what would let passage search on
                           Qdrant (whose multivector MaxSim is a full scan) scale, and so what
                           passages on by default wait for.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _bench
import numpy as np
from fastembed.postprocess import Muvera
from long_documents import JOINERS, read_raw, scifact_long

from ragembed import DenseEmbedder, MemoryStore, Retriever
from ragembed.embedders.sparse import BM25Embedder
from ragembed.evaluation import load_beir
from ragembed.evaluation.beir import BeirDataset
from ragembed.evaluation.metrics import ir_metrics
from ragembed.search.ranking import rrf_scores
from ragembed.types import DenseEmbeddings, MultiVectorEmbeddings, SparseEmbeddings, SparsePassageEmbeddings, narrow

MUVERA_SHAPES = [(3, 16, 8), (4, 16, 10), (5, 16, 20)]  # (k_sim, dim_proj, r_reps)


def passage_vectors(dense: DenseEmbedder, texts: list[str], size: int | None) -> list[np.ndarray]:
    """Each document's unit passage vectors at `size` word pieces (None: one vector, cut at the
    model's window), as the Retriever embeds them (through its embeddings cache)."""
    settings: dict[str, Any] = {"chunk_size": size} if size is not None else {"passages": False}
    embedded = Retriever(MemoryStore(), "dense", embedder=dense, **settings).document_embeddings("dense", texts)
    if size is None:
        rows: Sequence[np.ndarray] = list(narrow(embedded, DenseEmbeddings).data[:, None, :])
    else:
        rows = narrow(embedded, MultiVectorEmbeddings).vectors
    return [np.asarray(v, dtype=np.float32) / np.linalg.norm(v, axis=1, keepdims=True) for v in rows]


def max_sim(queries: np.ndarray, docs: Sequence[np.ndarray]) -> np.ndarray:
    """(queries, documents): each document's best vector's dot product with each query."""
    starts = np.cumsum([0] + [len(d) for d in docs[:-1]])
    return np.maximum.reduceat(queries @ np.concatenate(docs).T, starts, axis=1)


def metrics(data: BeirDataset, qids: list[str], ids: list[str], scores: np.ndarray) -> dict[str, float]:
    """nDCG@10 and recall@100 of each query's 100 best documents (by rank, ties by id)."""
    run = {}
    for row, qid in enumerate(qids):
        best = sorted(np.argsort(-scores[row], kind="stable")[:100], key=lambda j: (-scores[row, j], ids[j]))
        run[qid] = {ids[j]: float(100 - rank) for rank, j in enumerate(best)}
    _, mean = ir_metrics(run, data.qrels, ["ndcg@10", "recall@100"])
    return mean


def bm25_rows(data: BeirDataset, dense: DenseEmbedder, qids: list[str]) -> list[dict[str, Any]]:
    """BM25 of the whole text (`bm25`), of each passage (`bm25:passages`, the collection in passages
    of 128 and of the window), and RRF of `bm25:passages` with dense passages (100 candidates each,
    as `hybrid`, beside which it is printed; not a strategy: its figures say why)."""
    queries = [data.queries[q] for q in qids]
    whole = Retriever(MemoryStore(), "bm25", sparse_embedder=BM25Embedder(), passages=False)
    whole.index(data.corpus)
    rows = [{"row": "bm25 whole", **_ranked_metrics(data, qids, whole.search_many(queries, k=100))}]
    for size in (128, "window"):
        split = Retriever(
            MemoryStore(),
            ["bm25:passages", "dense", "hybrid"],
            embedder=dense,
            sparse_embedder=BM25Embedder(),
            chunk_size=size,
        )
        split.index(data.corpus)
        lexical = split.search_many(queries, k=100)
        semantic = split.search_many(queries, k=100, strategy="dense")
        fused = []
        for by_terms, by_meaning in zip(lexical, semantic):
            scores = rrf_scores([[h.id for h in by_terms], [h.id for h in by_meaning]], k=60)
            fused.append(sorted(scores, key=lambda doc: (-scores[doc], doc))[:100])
        terms = np.mean([sum(map(len, s.indices)) for s in _sets(split, data)])
        rows.append({"row": f"bm25 passages:{size}", "terms/doc": terms, **_ranked_metrics(data, qids, lexical)})
        rows.append({"row": f"bm25 passages:{size} fused with dense passages", **_ranked_metrics(data, qids, fused)})
        hybrid = split.search_many(queries, k=100, strategy="hybrid")
        rows.append({"row": f"hybrid (passages:{size})", **_ranked_metrics(data, qids, hybrid)})
    return rows


def _sets(retriever: Retriever, data: BeirDataset) -> Sequence[SparseEmbeddings]:
    """Each document's BM25 vectors of its passages, as the collection holds them."""
    texts = [d.text for d in data.corpus]
    return narrow(retriever.document_embeddings("sparse", texts, passages=True), SparsePassageEmbeddings).passages


def _ranked_metrics(data: BeirDataset, qids: list[str], found: Sequence[Sequence[Any]]) -> dict[str, float]:
    run = {
        qid: {(h if isinstance(h, str) else h.id): float(len(hits) - r) for r, h in enumerate(hits)}
        for qid, hits in zip(qids, found)
    }
    _, mean = ir_metrics(run, data.qrels, ["ndcg@10", "recall@100"])
    return mean


def measure(label: str, data: BeirDataset, dense: DenseEmbedder, pools: list[int]) -> list[dict[str, Any]]:
    ids, texts = [d.id for d in data.corpus], [d.text for d in data.corpus]
    qids = list(data.queries)
    query = narrow(dense.embed_queries([data.queries[q] for q in qids]), DenseEmbeddings).data
    query = query / np.linalg.norm(query, axis=1, keepdims=True)
    p128, p64, whole = (passage_vectors(dense, texts, size) for size in (128, 64, None))
    rows: list[dict[str, Any]] = []

    def add(row: str, sets: list[np.ndarray], scores: np.ndarray | None = None) -> None:
        scored = max_sim(query, sets) if scores is None else scores
        count = sum(len(s) for s in sets) / len(sets)
        rows.append({"data": label, "row": row, "vectors/doc": count, **metrics(data, qids, ids, scored)})
        print(rows[-1], flush=True)

    exact = max_sim(query, p128)
    add("dense whole (window)", whole)
    add("dense passages:128", p128, exact)
    add("dense set: 128 + whole", [np.concatenate(s) for s in zip(p128, whole)])
    add("dense set: 128 + 64", [np.concatenate(s) for s in zip(p128, p64)])
    add("dense set: 128 + 64 + whole", [np.concatenate(s) for s in zip(p128, p64, whole)])
    for row in bm25_rows(data, dense, qids):
        rows.append({"data": label, **row})
        print(rows[-1], flush=True)
    top10 = np.argsort(-exact, axis=1, kind="stable")[:, :10]
    mean = np.stack([p.mean(axis=0) for p in p128])
    firsts = {"mean of passages (384 d)": query @ (mean / np.linalg.norm(mean, axis=1, keepdims=True)).T}
    for k_sim, dim_proj, r_reps in MUVERA_SHAPES:
        muvera = Muvera(dim=query.shape[1], k_sim=k_sim, dim_proj=dim_proj, r_reps=r_reps, random_seed=42)
        encoded = np.stack([muvera.process_document(p) for p in p128])
        queries = np.stack([muvera.process_query(q[None, :]) for q in query])
        firsts[f"MUVERA k{k_sim}p{dim_proj}r{r_reps} ({muvera.embedding_size} d)"] = queries @ encoded.T
    for name, first in firsts.items():
        for pool in pools:
            candidates = np.argsort(-first, axis=1, kind="stable")[:, :pool]
            kept = np.mean([len(set(top10[i]) & set(candidates[i])) / 10 for i in range(len(qids))])
            rescored = np.full_like(exact, -np.inf)
            np.put_along_axis(rescored, candidates, np.take_along_axis(exact, candidates, axis=1), axis=1)
            rows.append(
                {
                    "data": label,
                    "row": f"first stage: {name}, {pool} rescored",
                    "top-10 kept": float(kept),
                    **metrics(data, qids, ids, rescored),
                }
            )
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(_bench.SCIFACT))
    parser.add_argument("--per-document", type=int, default=8)
    parser.add_argument("--pools", default="100,200", help="first-stage candidates rescored, comma-separated")
    parser.add_argument("--output", default="runs/passage_options.json")
    args = parser.parse_args()
    data = load_beir(args.data, "test")
    raw = read_raw(Path(args.data) / "corpus.jsonl")
    dense = DenseEmbedder(show_progress=True)
    pools = [int(p) for p in args.pools.split(",")]
    rows: list[dict[str, Any]] = []
    for variant, joiner in JOINERS.items():
        long, _ = scifact_long(data, raw, args.per_document, joiner)
        rows += measure(f"scifact-long ({variant})", long, dense, pools)
    rows += measure("scifact", data, dense, pools)
    columns = [
        ("data", "data", "s"),
        ("row", "row", "s"),
        ("vectors/doc", "vectors/doc", ".1f"),
        ("terms/doc", "BM25 terms/doc", ".0f"),
        ("ndcg@10", "nDCG@10", ".4f"),
        ("recall@100", "R@100", ".4f"),
        ("top-10 kept", "top-10 kept", ".3f"),
    ]
    print(_bench.machine())
    print(_bench.table(rows, columns))
    _bench.write_json(args.output, {"per_document": args.per_document, "rows": rows})


if __name__ == "__main__":
    main()
