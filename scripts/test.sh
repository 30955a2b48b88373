#!/usr/bin/env bash
# Install everything the tests need, lint, type-check, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
THINKRAG_EXTRAS=local,st,use,ray,postgres,dev bash scripts/install.sh
# The console tests drive the OS Chromium (Playwright's own browser download is not used);
# a small CJK font lets their screenshots show Chinese text.
if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/truetype/wqy ]; then
  SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
  PKGS="chromium fonts-wqy-microhei"
  $SUDO apt-get install -y $PKGS || { $SUDO apt-get update && $SUDO apt-get install -y $PKGS; }
fi
# The Postgres tests start a throwaway server from the OS packages (initdb + pg_ctl).
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
  $SUDO apt-get install -y postgresql || { $SUDO apt-get update && $SUDO apt-get install -y postgresql; }
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
