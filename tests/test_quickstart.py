"""The sentence-transformers README example, through ragembed's public API and default model."""

import numpy as np

import ragembed


def test_sentence_transformers_readme_example():
    sentences = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    embedder = ragembed.DenseEmbedder()  # bundled all-MiniLM-L6-v2, offline
    embeddings = embedder.embed_documents(sentences)
    assert embeddings.shape == (3, 384)
    expected = [[1.0000, 0.6660, 0.1046], [0.6660, 1.0000, 0.1411], [0.1046, 0.1411, 1.0000]]
    np.testing.assert_array_equal(np.round(ragembed.similarity(embeddings), 4), np.array(expected, dtype=np.float32))
