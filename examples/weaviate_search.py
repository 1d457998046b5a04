"""Weaviate: dense, binary-quantized and Weaviate's own BM25 hybrid search, embedded by default.

scripts/weaviate.sh build                                   # once: builds the server with Go
.venv/bin/python examples/weaviate_search.py [--docs 500]   # embedded Weaviate in ./example-weaviate
.venv/bin/python examples/weaviate_search.py --url http://127.0.0.1:8080   # a running server
"""

import argparse

from _data import scifact_slice

from ragembed import Retriever
from ragembed.stores.weaviate import WeaviateStore

parser = argparse.ArgumentParser()
parser.add_argument("--docs", type=int, default=500)
parser.add_argument("--queries", type=int, default=3)
parser.add_argument("--url", help="a Weaviate server (default: embedded, data in ./example-weaviate)")
args = parser.parse_args()

docs, queries, qrels = scifact_slice(args.docs, args.queries)
store = WeaviateStore(args.url, "Example") if args.url else WeaviateStore.embedded("./example-weaviate", "Example")
store.drop()
retriever = Retriever(store, ["dense", "binary", "keyword-hybrid"])
retriever.index(docs)
print(f"{retriever.count()} abstracts in Weaviate collection {store.name}")
for qid, text in queries.items():
    print(f"\n{text}  (relevant: {sorted(qrels[qid])})")
    for strategy in ("dense", "binary", "keyword-hybrid"):
        hits = retriever.search(text, k=3, strategy=strategy)
        print(f"  {strategy:<15}" + "  ".join(h.id for h in hits))
retriever.close()
