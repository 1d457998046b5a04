#!/usr/bin/env bash
# Creates .venv and installs ragembed with every extra, the LlamaIndex integration package
# (integrations/llama-index-retrievers-ragembed) and the test tools, at the versions in
# constraints.txt. Safe to run again: an existing .venv is reused.
#   --with-weaviate   also build the Weaviate server (scripts/weaviate.sh build: Go, about 10
#                     minutes once, cached under ~/.cache/ragembed), so its tests run for real
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]" -e integrations/llama-index-retrievers-ragembed
echo "ragembed is installed in .venv ($(.venv/bin/python -c 'import ragembed; print(ragembed.__version__)'))"
if [ "${1:-}" = "--with-weaviate" ]; then
  # A failed build must not stop the rest of the setup: the Weaviate tests then skip, and the
  # test summary (-rs) says why.
  ./scripts/weaviate.sh build || echo "WARNING: building Weaviate failed (see above); its tests will skip" >&2
fi
