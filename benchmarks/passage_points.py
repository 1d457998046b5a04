"""Qdrant Edge: one point per passage, grouped by document, through the Retriever and as raw engine
queries, beside whole documents, in one run, on SciFact-long (paragraphs) and the original SciFact.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/passage_points.py [--data data/scifact]
        [--per-document 8] [--output runs/passage_points.json]

Rows, per corpus (the same 128-word-piece passage vectors in both passage rows):
  whole            Retriever(passages=False) on QdrantEdgeStore: one vector a document, HNSW
  passages         Retriever(chunk_size=128) on QdrantEdgeStore: its passage points (the layout
                   this script measured raw before ragembed adopted it, when a document's
                   passages were one multivector scored by a full MaxSim scan), each hit's best
                   passage named from its passage map
  passage points   qdrant-edge-py directly: one point per passage (HNSW, cosine), payload its
                   document's id and its offsets; a query asks for 4k passages (doubling until k
                   documents are among them, or the collection is exhausted), and the first
                   passage of each document is its best: the document's score and its passage
  whole points     the same code with one point per document (its whole vector): the engine's
                   own cost of one vector a document, without the Retriever's per-query work,
                   so the passage-points row compares with it, and the Retriever rows with
                   each other
p50@10 / p50@100: one query at a time, the query's embedding cached, the best passage included.
nDCG@10 / recall@100: trec_eval's at k=100. Qdrant Edge has no grouping query
(`query_points_groups` is the server's), so the grouping is done here; this measures what a
passage-point layout costs in the engine, apart from the Retriever's per-query work.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import _bench
import numpy as np
import qdrant_edge as qe
from long_documents import JOINERS, read_raw, scifact_long

from ragembed import DenseEmbedder, QdrantEdgeStore, Retriever
from ragembed.evaluation import load_beir
from ragembed.evaluation.beir import BeirDataset
from ragembed.evaluation.metrics import ir_metrics
from ragembed.passages import Chunking
from ragembed.types import DenseEmbeddings, narrow

SIZE = 128
FIELD = "dense"


class PassagePoints:
    """One Qdrant Edge point per passage; documents found by grouping passage hits."""

    def __init__(self, folder: Path, dim: int) -> None:
        config = qe.EdgeConfig(vectors={FIELD: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)})
        folder.mkdir(parents=True)
        self.shard = qe.EdgeShard.create(str(folder), config)

    def index(self, ids: list[str], vectors: list[np.ndarray], spans: list[list[tuple[int, int]]]) -> None:
        points, n = [], 0
        for doc, rows, doc_spans in zip(ids, vectors, spans):
            for row, (start, end) in zip(rows, doc_spans):
                points.append(qe.Point(n, {FIELD: row.tolist()}, {"doc": doc, "start": start, "end": end}))
                n += 1
        for start in range(0, len(points), 1024):
            self.shard.update(qe.UpdateOperation.upsert_points(points[start : start + 1024]))
        self.shard.optimize()

    def search(self, query: np.ndarray, k: int) -> list[tuple[str, float, int, int]]:
        """The k best documents: (id, best passage's score, its start, its end)."""
        limit = 4 * k
        while True:
            points = self.shard.query(
                qe.QueryRequest(query=qe.Query.Nearest(query.tolist(), using=FIELD), limit=limit, with_payload=True)
            )
            best: dict[str, tuple[str, float, int, int]] = {}
            for p in points:  # best first: a document's first passage is its best
                if p.payload["doc"] not in best:
                    best[p.payload["doc"]] = (p.payload["doc"], p.score, p.payload["start"], p.payload["end"])
            if len(best) >= k or len(points) < limit:
                return list(best.values())[:k]
            limit *= 2

    def close(self) -> None:
        self.shard.close()


def embedded(
    dense: DenseEmbedder, texts: list[str], size: int | None
) -> tuple[list[np.ndarray], list[list[tuple[int, int]]]]:
    """Each text's vectors and their character spans: its passages' at `size` word pieces, or
    (None) one vector of the whole text, cut at the model's window."""
    if size is None:
        whole = narrow(dense.embed_documents(texts), DenseEmbeddings).data
        return [row[None, :] for row in whole], [[(0, len(t))] for t in texts]
    splitter = dense.splitter(Chunking(size))
    assert splitter is not None  # a dense model has a window
    split = [splitter.split(t) for t in texts]
    flat = narrow(dense.embed_documents([p.text for passages in split for p in passages]), DenseEmbeddings).data
    ends = np.cumsum([len(passages) for passages in split])
    vectors = [flat[end - len(passages) : end] for end, passages in zip(ends, split)]
    return vectors, [[(p.start, p.end) for p in passages] for passages in split]


def measure(label: str, data: BeirDataset, dense: DenseEmbedder, tmp: Path) -> list[dict[str, Any]]:
    qids = list(data.queries)
    queries = [data.queries[q] for q in qids]
    rows: list[dict[str, Any]] = []

    def add(layout: str, search: Any, index_s: float, points: int) -> None:
        found = [search(q, 100) for q in queries]
        run = {qid: {doc: float(100 - r) for r, doc in enumerate(docs)} for qid, docs in zip(qids, found)}
        _, metrics = ir_metrics(run, data.qrels, ["ndcg@10", "recall@100"])
        p50 = {k: _bench.timed_each(lambda q, k=k: search(q, k), queries)[1]["p50_ms"] for k in (10, 100)}
        rows.append(
            {"data": label, "layout": layout, **metrics, "p50@10": p50[10], "p50@100": p50[100]}
            | {"points": points, "index_s": index_s}
        )
        print(rows[-1], flush=True)

    for layout, settings in (("whole", {"passages": False}), ("passages", {"chunk_size": SIZE})):
        store = QdrantEdgeStore(tmp / f"{label}-{layout}", "bench")
        retriever = Retriever(store, "dense", embedder=dense, **settings)
        started = time.perf_counter()
        retriever.index(data.corpus)
        add(
            layout,
            lambda q, k, r=retriever: [h.id for h in r.search(q, k)],
            time.perf_counter() - started,
            len(data.corpus),
        )
        store.close()

    texts, ids = [d.text for d in data.corpus], [d.id for d in data.corpus]
    for layout, size in (("whole points", None), ("passage points", SIZE)):
        started = time.perf_counter()  # splitting and embedding (cached) too, as Retriever.index
        vectors, spans = embedded(dense, texts, size)
        points = PassagePoints(tmp / f"{label}-{layout}", vectors[0].shape[1])
        points.index(ids, vectors, spans)
        index_s = time.perf_counter() - started

        def grouped(q: str, k: int, points: PassagePoints = points) -> list[str]:
            query = narrow(dense.embed_queries([q]), DenseEmbeddings).data[0]  # cached, as the Retriever's
            return [doc for doc, *_ in points.search(query, k)]

        add(layout, grouped, index_s, sum(len(v) for v in vectors))
        points.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(_bench.SCIFACT))
    parser.add_argument("--per-document", type=int, default=8)
    parser.add_argument("--output", default="runs/passage_points.json")
    args = parser.parse_args()
    data = load_beir(args.data, "test")
    raw = read_raw(Path(args.data) / "corpus.jsonl")
    dense = DenseEmbedder(show_progress=True)
    long, _ = scifact_long(data, raw, args.per_document, JOINERS["paragraphs"])
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += measure("scifact-long (paragraphs)", long, dense, Path(tmp))
        rows += measure("scifact", data, dense, Path(tmp))
    columns = [
        ("data", "data", "s"),
        ("layout", "layout", "s"),
        ("points", "points", "d"),
        ("ndcg@10", "nDCG@10", ".4f"),
        ("recall@100", "R@100", ".4f"),
        ("p50@10", "p50@10 ms", ".2f"),
        ("p50@100", "p50@100 ms", ".2f"),
        ("index_s", "index s", ".1f"),
    ]
    print(_bench.machine())
    print(_bench.table(rows, columns))
    _bench.write_json(args.output, {"per_document": args.per_document, "size": SIZE, "rows": rows})


if __name__ == "__main__":
    main()
