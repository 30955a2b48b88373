#!/usr/bin/env bash
# Install everything the tests need, lint, type-check, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
THINKRAG_EXTRAS=local,st,use,ray,dev bash scripts/install.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
