"""ColBERT late interaction in the embedded Qdrant engine: MaxSim over every document, and with a
dense first stage that keeps it fast.

    .venv/bin/python examples/colbert_qdrant.py [--docs 300] [--model PATH]

The default ColBERT model is the bundled MiniLM with an untrained (seeded) projection head;
`ragembed finetune colbert` trains one (pass its folder with --model).
"""

import argparse
import time

from _data import scifact_slice

from ragembed import ColBERTEmbedder, Retriever

parser = argparse.ArgumentParser()
parser.add_argument("--docs", type=int, default=300)
parser.add_argument("--queries", type=int, default=3)
parser.add_argument("--model", help="a PyLate ColBERT model folder")
args = parser.parse_args()

docs, queries, qrels = scifact_slice(args.docs, args.queries)
retriever = Retriever(
    "qdrant-edge:./example-index",
    ["colbert", "colbert+dense"],
    multivector_embedder=ColBERTEmbedder(args.model, show_progress=True),
    collection="colbert",
)
retriever.store.drop()
retriever.index(docs)
for qid, text in queries.items():
    print(f"\n{text}  (relevant: {sorted(qrels[qid])})")
    for strategy in ("colbert", "colbert+dense"):
        started = time.perf_counter()
        hits = retriever.search(text, k=3, strategy=strategy)
        took = 1000 * (time.perf_counter() - started)
        print(f"  {strategy:<14} {took:6.1f} ms  " + "  ".join(f"{h.id} ({h.score:.2f})" for h in hits))
retriever.close()
