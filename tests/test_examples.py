"""Every script in examples/ runs, on small slices of SciFact, as its header says (smoke tests:
each must exit 0 and print what it promises)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from weaviate_server import unavailable_reason

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

CASES = {
    "quickstart.py": ([], "bees-2"),
    "matryoshka_funnel.py": (["--docs", "80", "--queries", "5"], "funnel:64"),
    "colbert_qdrant.py": (["--docs", "40", "--queries", "1"], "colbert+dense"),
    "binary_rescoring.py": (["--docs", "80", "--queries", "5"], "recall@10"),
    "hybrid_search.py": (["--docs", "80", "--queries", "5"], "hybrid  nDCG@10"),
    "weaviate_search.py": (["--docs", "40", "--queries", "1"], "keyword-hybrid"),
    "evaluate_retriever.py": (["--queries", "5"], "report:"),
    "llamaindex_rag.py": (["--docs", "60"], "extractive answer"),
    "long_documents.py": (["--docs", "80", "--queries", "5"], "passages nDCG@10"),
}


def test_every_example_is_covered():
    assert {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")} == set(CASES)


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs(script, tmp_path):
    if script.startswith("weaviate") and unavailable_reason():
        pytest.skip(unavailable_reason())
    args, expected = CASES[script]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for key in ("OPENAI_BASE_URL", "OLLAMA_HOST"):  # the RAG example must take its offline path
        env.pop(key, None)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert expected in done.stdout
