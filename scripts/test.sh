#!/usr/bin/env bash
# Install everything the tests need, lint, type-check, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
THINKRAG_EXTRAS=local,st,use,ray,dev bash scripts/install.sh
# The console tests drive the OS Chromium (Playwright's own browser download is not used).
if ! command -v /usr/bin/chromium >/dev/null; then
  $([ "$(id -u)" -eq 0 ] || echo sudo) apt-get install -y chromium \
    || { apt-get update && apt-get install -y chromium; }
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
