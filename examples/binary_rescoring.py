"""Binary quantization with rescoring: 32x smaller vectors (one sign bit per dimension), the
candidates rescored with float32, in Qdrant's engine (native binary quantization). `binary`
scores the query's own values against the bits (asymmetric), `binary:hamming` reduces the query
to bits too (Hamming distance).

    .venv/bin/python examples/binary_rescoring.py [--docs 2000]

Prints recall@10 against exact float32 search, with and without rescoring.
"""

import argparse

from _data import scifact_slice

from ragembed import Retriever

parser = argparse.ArgumentParser()
parser.add_argument("--docs", type=int, default=2000)
parser.add_argument("--queries", type=int, default=50)
args = parser.parse_args()

docs, queries, _ = scifact_slice(args.docs, args.queries)
retriever = Retriever(
    "qdrant-edge:./example-index", ["dense", "binary", "binary:norescore", "binary:hamming"], collection="binary"
)
retriever.store.drop()
retriever.index(docs)
texts = list(queries.values())
exact = [{h.id for h in hits} for hits in retriever.search_many(texts, k=10, strategy="dense")]
for strategy in ("binary", "binary:norescore", "binary:hamming"):
    found = [{h.id for h in hits} for hits in retriever.search_many(texts, k=10, strategy=strategy)]
    recall = sum(len(a & b) for a, b in zip(found, exact)) / (10 * len(texts))
    print(f"{strategy:<17} recall@10 vs float32: {recall:.3f}")
dim = retriever.store.schema["dense"].dim
print(f"bytes per vector: float32 {4 * dim}, binary {dim // 8}")
retriever.close()
