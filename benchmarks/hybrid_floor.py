"""Qdrant Edge: what `hybrid` over passages costs at the least, beside ragembed's `hybrid` and whole
documents' `dense`, on SciFact-long (paragraphs), in one run (issue 39's latency goal).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/hybrid_floor.py [--data data/scifact]
        [--per-document 8] [--output runs/hybrid_floor.json]

Rows (one query at a time, the query's embeddings computed before timing):
  Retriever whole dense      Retriever(passages=False) on QdrantEdgeStore, strategy dense
  Retriever passages dense   Retriever(chunk_size=128) on QdrantEdgeStore, strategy dense
  Retriever passages hybrid  the same collection, strategy hybrid (BM25 and dense passages, 100
                             candidates each, fused by RRF), each hit's best passage named
  raw whole dense            qdrant-edge-py directly: one point a document (its vector, its text
                             as payload), one query for k points with their payloads
  raw passages hybrid        qdrant-edge-py directly, the least the engine can be asked for the
                             same answer: BM25 over document points and dense over passage points
                             (integer point ids, which come back cheaper than UUIDs, and no payload:
                             a Python list names each point's document), 100 documents from each
                             (4 passages a document asked, as ragembed asks), fused by RRF, then
                             the top k documents' points read with their payloads
Each raw row gives the share of queries whose top 10 equals that of the Retriever row it stands
beside (the same engine and data: they differ only where HNSW graphs built in another order
differ, or a tie at a candidate stage's cut-off falls otherwise). The raw rows leave out what the
Retriever adds (the plan, the best passage named, the hits built): the floor is what any client
of this engine pays for the hybrid answer through its Python API.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import _bench
import numpy as np
import qdrant_edge as qe
from long_documents import JOINERS, read_raw, scifact_long
from passage_points import SIZE, embedded

from ragembed import DenseEmbedder, QdrantEdgeStore, Retriever
from ragembed.embedders.sparse import BM25Embedder
from ragembed.evaluation import load_beir
from ragembed.evaluation.beir import BeirDataset
from ragembed.types import DenseEmbeddings, SparseEmbeddings, narrow

CANDIDATES, RRF_K, PASSAGES_PER_DOCUMENT = 100, 60, 4


class RawHybrid:
    """Document points (BM25, text) and passage points (dense) in one Edge shard, integer ids:
    documents 0..n-1, passages from n on."""

    def __init__(self, folder: Path, dim: int) -> None:
        config = qe.EdgeConfig(
            vectors={"dense": qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
            sparse_vectors={"bm25": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )
        folder.mkdir(parents=True)
        self.shard = qe.EdgeShard.create(str(folder), config)
        self.ids: list[str] = []  # point id -> document id (documents' points)
        self.owner: list[int] = []  # passage point id - len(ids) -> its document's point id

    def index(self, ids: list[str], texts: list[str], sparse: SparseEmbeddings, passages: list[np.ndarray]) -> None:
        self.ids = ids
        points = [
            qe.Point(
                row, {"bm25": qe.SparseVector(sparse.indices[row].tolist(), sparse.values[row].tolist())}, {"text": t}
            )
            for row, t in enumerate(texts)
        ]
        for row, vectors in enumerate(passages):
            for v in vectors:
                points.append(qe.Point(len(ids) + len(self.owner), {"dense": v.tolist()}, {}))
                self.owner.append(row)
        for start in range(0, len(points), 1024):
            self.shard.update(qe.UpdateOperation.upsert_points(points[start : start + 1024]))
        self.shard.optimize()

    def search(self, sparse: Any, dense: list[float], k: int) -> list[str]:
        """The top k documents' ids (ties by id, as ragembed's), their payloads read."""
        lexical = self.shard.query(qe.QueryRequest(query=qe.Query.Nearest(sparse, using="bm25"), limit=CANDIDATES))
        passages = self.shard.query(
            qe.QueryRequest(query=qe.Query.Nearest(dense, using="dense"), limit=PASSAGES_PER_DOCUMENT * CANDIDATES)
        )
        best: dict[int, float] = {}
        for p in passages:  # best first: a document's first passage is its best
            best.setdefault(self.owner[p.id - len(self.ids)], p.score)
        semantic = sorted(best, key=lambda d: (-best[d], self.ids[d]))[:CANDIDATES]
        fused: dict[int, float] = {}
        for ranking in ([p.id for p in lexical], semantic):
            for rank, doc in enumerate(ranking, start=1):
                fused[doc] = fused.get(doc, 0.0) + 1.0 / (RRF_K + rank)
        top = sorted(fused, key=lambda d: (-fused[d], self.ids[d]))[:k]
        found = {r.id for r in self.shard.retrieve(top, True, False) if r.payload["text"]}
        return [self.ids[d] for d in top if d in found]

    def close(self) -> None:
        self.shard.close()


class RawWhole:
    """One point a document: its dense vector, its text as payload."""

    def __init__(self, folder: Path, ids: list[str], vectors: np.ndarray, texts: list[str]) -> None:
        self.ids = ids
        config = qe.EdgeConfig(
            vectors={"dense": qe.EdgeVectorParams(size=vectors.shape[1], distance=qe.Distance.Cosine)}
        )
        folder.mkdir(parents=True)
        self.shard = qe.EdgeShard.create(str(folder), config)
        points = [qe.Point(row, {"dense": v.tolist()}, {"text": t}) for row, (v, t) in enumerate(zip(vectors, texts))]
        for start in range(0, len(points), 1024):
            self.shard.update(qe.UpdateOperation.upsert_points(points[start : start + 1024]))
        self.shard.optimize()

    def search(self, dense: list[float], k: int) -> list[str]:
        found = self.shard.query(
            qe.QueryRequest(query=qe.Query.Nearest(dense, using="dense"), limit=k, with_payload=True)
        )
        return [self.ids[p.id] for p in found if p.payload["text"]]

    def close(self) -> None:
        self.shard.close()


def measure(data: BeirDataset, dense: DenseEmbedder, bm25: BM25Embedder, tmp: Path) -> list[dict[str, Any]]:
    queries = list(data.queries.values())
    rows: list[dict[str, Any]] = []
    answers: dict[str, list[list[str]]] = {}  # each row's top 10 ids a query

    def add(row: str, search: Any, same_as: str | None = None) -> None:
        answers[row] = [search(i, 10) for i in range(len(queries))]
        p50 = {k: _bench.timed_each(lambda i, k=k: search(i, k), range(len(queries)))[1]["p50_ms"] for k in (10, 100)}
        rows.append({"row": row, "p50@10": p50[10], "p50@100": p50[100]})
        if same_as is not None:  # a raw row answers what the Retriever's row answers
            rows[-1]["same_top10"] = float(np.mean([a == b for a, b in zip(answers[row], answers[same_as])]))
        print(rows[-1], flush=True)

    for label, settings, strategies in (
        ("whole", {"passages": False}, ["dense"]),
        ("passages", {"chunk_size": SIZE}, ["dense", "hybrid"]),
    ):
        store = QdrantEdgeStore(tmp / label, "bench")
        retriever = Retriever(store, strategies, embedder=dense, sparse_embedder=bm25, **settings)
        retriever.index(data.corpus)
        for strategy in strategies:

            def search(i: int, k: int, s: str = strategy, r: Retriever = retriever) -> list[str]:
                return [h.id for h in r.search(queries[i], k, strategy=s)]

            add(f"Retriever {label} {strategy}", search)
        store.close()

    ids, texts = [d.id for d in data.corpus], [d.text for d in data.corpus]
    query_vectors = narrow(dense.embed_queries(queries), DenseEmbeddings).data.tolist()
    whole_vectors, _ = embedded(dense, texts, None)
    whole = RawWhole(tmp / "raw-whole", ids, np.vstack(whole_vectors), texts)
    add("raw whole dense", lambda i, k: whole.search(query_vectors[i], k), "Retriever whole dense")
    whole.close()

    lexical = bm25.fitted(texts)
    terms = narrow(lexical.embed_queries(queries), SparseEmbeddings)
    sparse_queries = [qe.SparseVector(terms.indices[i].tolist(), terms.values[i].tolist()) for i in range(len(queries))]
    passages, _ = embedded(dense, texts, SIZE)
    hybrid = RawHybrid(tmp / "raw-hybrid", passages[0].shape[1])
    hybrid.index(ids, texts, narrow(lexical.embed_documents(texts), SparseEmbeddings), passages)
    add(
        "raw passages hybrid",
        lambda i, k: hybrid.search(sparse_queries[i], query_vectors[i], k),
        "Retriever passages hybrid",
    )
    hybrid.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(_bench.SCIFACT))
    parser.add_argument("--per-document", type=int, default=8)
    parser.add_argument("--output", default="runs/hybrid_floor.json")
    args = parser.parse_args()
    data = load_beir(args.data, "test")
    raw = read_raw(Path(args.data) / "corpus.jsonl")
    long, _ = scifact_long(data, raw, args.per_document, JOINERS["paragraphs"])
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(long, DenseEmbedder(show_progress=True), BM25Embedder(), Path(tmp))
    base = {k: next(r[k] for r in rows if r["row"] == "Retriever whole dense") for k in ("p50@10", "p50@100")}
    for r in rows:
        r["x@10"], r["x@100"] = r["p50@10"] / base["p50@10"], r["p50@100"] / base["p50@100"]
    columns = [
        ("row", "row", "s"),
        ("p50@10", "p50@10 ms", ".2f"),
        ("x@10", "/ whole dense", ".1f"),
        ("p50@100", "p50@100 ms", ".2f"),
        ("x@100", "/ whole dense", ".1f"),
        ("same_top10", "same top 10 as the Retriever", ".3f"),
    ]
    print(_bench.machine())
    print(_bench.table(rows, columns))
    _bench.write_json(args.output, {"per_document": args.per_document, "size": SIZE, "rows": rows})


if __name__ == "__main__":
    main()
