"""Long documents: whole (cut at the model's window) against passages, in the embedded Qdrant
engine. SciFact abstracts are joined eight to a document (blank lines between them), so most of
each document lies beyond all-MiniLM-L6-v2's 256 word pieces; in passages of 128 word pieces every
word is embedded, a document scores by its best passage, and each hit shows that passage.

    .venv/bin/python examples/long_documents.py [--docs 800] [--queries 50]
"""

import argparse
import warnings

from _data import scifact_slice

from ragembed import Document, Retriever, TruncationWarning
from ragembed.evaluation import ir_metrics, run_from_hits

parser = argparse.ArgumentParser()
parser.add_argument("--docs", type=int, default=800)
parser.add_argument("--queries", type=int, default=50)
args = parser.parse_args()

abstracts, queries, qrels = scifact_slice(args.docs, args.queries)
long_docs, holder = [], {}
for n in range(0, len(abstracts), 8):
    group = abstracts[n : n + 8]
    long_docs.append(Document(f"long-{n // 8}", "\n\n".join(a.text for a in group)))
    holder.update({a.id: long_docs[-1].id for a in group})
long_qrels = {q: {holder[d]: grade for d, grade in judged.items()} for q, judged in qrels.items()}

for label, settings in (("whole", {"passages": False}), ("passages", {"chunk_size": 128})):
    retriever = Retriever("qdrant-edge:./example-index", "dense", collection=f"long-{label}", **settings)
    retriever.drop()  # a fresh collection each run
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", TruncationWarning)
        retriever.index(long_docs)
    results = dict(zip(queries, retriever.search_many(list(queries.values()), k=10)))
    _, mean = ir_metrics(run_from_hits(results), long_qrels, ["ndcg@10"])
    print(f"{label:<8} nDCG@10 {mean['ndcg@10']:.4f}  ({len(said)} truncation warning(s))")
    if label == "passages":
        text = next(iter(queries.values()))
        hit = retriever.search(text, k=1)[0]
        print(f"\n{text}\n  {hit.score:.4f}  {hit.id} characters {hit.passage.start}-{hit.passage.end}:")
        print(f"  {hit.passage.text[:300]}")
    retriever.close()
