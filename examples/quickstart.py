"""Quickstart: the sentence-transformers README example through ragembed, then index and search.

    .venv/bin/python examples/quickstart.py

Runs offline with the bundled all-MiniLM-L6-v2.
"""

import ragembed
from ragembed import Document, Range, Retriever

sentences = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
embedder = ragembed.DenseEmbedder()
embeddings = embedder.embed_documents(sentences)
print("shape:", embeddings.shape)
print(ragembed.similarity(embeddings).round(4))

retriever = Retriever("memory", strategy=["dense", "binary"], embedder=embedder)
retriever.index(
    [
        Document("bees-1", "Bees pollinate flowering plants.", {"year": 2019}),
        Document("bees-2", "Bees make honey from nectar.", {"year": 2022}),
        Document("rust-1", "Rust has ownership and borrowing.", {"year": 2022}),
    ]
)
for hit in retriever.search("how is honey made?", k=2):
    print(f"{hit.score:.3f}  {hit.id}  {hit.text}")
print("filtered:", [h.id for h in retriever.search("bees", k=3, filter={"year": Range(gte=2020)})])
