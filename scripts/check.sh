#!/usr/bin/env bash
# The gates .ci/run applies before the tests (configured in pyproject.toml): ruff lint and format
# over the tree, mypy strict over src/ragembed and over the LlamaIndex integrations.
#   ./scripts/check.sh          check
#   ./scripts/check.sh --fix    apply ruff's fixes and formatting first
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fix" ]; then
  .venv/bin/ruff check --fix --quiet . || true  # what is left unfixed is reported below
  .venv/bin/ruff format --quiet .
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/mypy -p llama_index.retrievers.ragembed -p llama_index.embeddings.ragembed -p llama_index.postprocessor.ragembed_rerank
