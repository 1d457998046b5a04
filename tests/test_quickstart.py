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


def test_the_public_api_names_what_users_meet():
    import subprocess
    import sys

    import ragembed

    # what Retriever.index raises, the keyword plan and strategies, and every store class
    for name in (
        "PartialWriteError",
        "KeywordSearch",
        "Keyword",
        "KeywordHybrid",
        "QdrantStore",
        "QdrantEdgeStore",
        "WeaviateStore",
        "MemoryStore",
    ):
        assert name in ragembed.__all__ and getattr(ragembed, name).__name__ == name
    assert "default_model_path" not in ragembed.__all__  # plumbing stays in ragembed.embedders.dense
    # the store classes with optional clients load on first use, not at import
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, ragembed; print(sorted(m for m in sys.modules if "
            "m.split('.')[0] in ('qdrant_client', 'qdrant_edge', 'weaviate')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == "[]"
