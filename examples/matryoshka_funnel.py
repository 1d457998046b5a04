"""Matryoshka funnel: search 64-dimension prefixes, rescore the candidates at full dimension.

    .venv/bin/python examples/matryoshka_funnel.py [--docs 1000] [--model PATH]

With the bundled model the 64-dim search alone loses quality and the funnel wins it back; a
model trained by `ragembed finetune dense` (pass --model) keeps far more at 64 dimensions.
"""

import argparse

from _data import scifact_slice

from ragembed import DenseEmbedder, Retriever
from ragembed.evaluation import ir_metrics, run_from_hits

parser = argparse.ArgumentParser()
parser.add_argument("--docs", type=int, default=1000)
parser.add_argument("--queries", type=int, default=50)
parser.add_argument("--model", help="a (Matryoshka-trained) model folder; default: bundled MiniLM")
args = parser.parse_args()

docs, queries, qrels = scifact_slice(args.docs, args.queries)
strategies = ["dense", "matryoshka:64", "funnel:64"]
retriever = Retriever(
    "qdrant-edge:./example-index", strategies, embedder=DenseEmbedder(args.model), collection="matryoshka-funnel"
)
retriever.store.drop()
retriever.index(docs)
print(f"{len(docs)} abstracts, {len(queries)} queries (SciFact test)")
for strategy in strategies:
    results = dict(zip(queries, retriever.search_many(list(queries.values()), k=10, strategy=strategy)))
    _, mean = ir_metrics(run_from_hits(results), qrels, ["ndcg@10"])
    print(f"{strategy:<15} nDCG@10 {mean['ndcg@10']:.4f}")
retriever.close()
