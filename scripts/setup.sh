#!/usr/bin/env bash
# Creates .venv and installs ragembed with every extra, the LlamaIndex integration packages
# (integrations/llama-index-embeddings-ragembed, llama-index-retrievers-ragembed,
# llama-index-postprocessor-ragembed-rerank) and the test tools, at the versions in
# constraints.txt. Safe to run again: an existing .venv is reused.
#   --with-weaviate   also build the Weaviate server (scripts/weaviate.sh build: Go, about 10
#                     minutes once, cached under ~/.cache/ragembed), so its tests run for real
#   --with-qdrant     also get the Qdrant server (scripts/qdrant.sh build: the prebuilt binary in
#                     ../shared/qdrant when its sha256 matches, else a cargo build of about an
#                     hour), so the Qdrant server and cluster tests run for real
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]" \
  -e integrations/llama-index-embeddings-ragembed -e integrations/llama-index-retrievers-ragembed \
  -e integrations/llama-index-postprocessor-ragembed-rerank
echo "ragembed is installed in .venv ($(.venv/bin/python -c 'import ragembed; print(ragembed.__version__)'))"
# A failed server build must not stop the rest of the setup: its tests then skip, and the test
# summary (-rs) says why.
for option in "$@"; do
  case "$option" in
    --with-weaviate) ./scripts/weaviate.sh build ||
                       echo "WARNING: building Weaviate failed (see above); its tests will skip" >&2 ;;
    --with-qdrant) ./scripts/qdrant.sh build >/dev/null ||
                     echo "WARNING: getting the Qdrant server failed (see above); its tests will skip" >&2 ;;
    *) echo "unknown option $option (use --with-weaviate, --with-qdrant)" >&2; exit 2 ;;
  esac
done
