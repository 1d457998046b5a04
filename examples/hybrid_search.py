"""Hybrid search: BM25 (exact words) and dense (meaning) fused by reciprocal rank, in the
embedded Qdrant engine (sparse vectors with IDF, RRF fusion in one query).

    .venv/bin/python examples/hybrid_search.py [--docs 1000]
"""

import argparse

from _data import scifact_slice

from ragembed import Retriever
from ragembed.evaluation import ir_metrics, run_from_hits

parser = argparse.ArgumentParser()
parser.add_argument("--docs", type=int, default=1000)
parser.add_argument("--queries", type=int, default=50)
args = parser.parse_args()

docs, queries, qrels = scifact_slice(args.docs, args.queries)
retriever = Retriever("qdrant-edge:./example-index", ["hybrid", "bm25", "dense"], collection="hybrid")
retriever.store.drop()
retriever.index(docs)
for strategy in ("bm25", "dense", "hybrid"):
    results = dict(zip(queries, retriever.search_many(list(queries.values()), k=10, strategy=strategy)))
    _, mean = ir_metrics(run_from_hits(results), qrels, ["ndcg@10"])
    print(f"{strategy:<7} nDCG@10 {mean['ndcg@10']:.4f}")
text = next(iter(queries.values()))
print(f"\n{text}")
for hit in retriever.search(text, k=3):
    print(f"  {hit.score:.4f}  {hit.id}  {hit.text[:90]}")
retriever.close()
