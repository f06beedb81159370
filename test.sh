#!/usr/bin/env bash
# Set up (virtualenv, requirements, the Azurite emulator from npm) if needed, then lint and run every test.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/setup-venv.sh
if [ ! -x tests/azurite/node_modules/.bin/azurite-blob ]; then
  npm install --prefix tests/azurite --no-audit --no-fund --silent
fi
ruff check .
exec python -m pytest "$@"
