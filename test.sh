#!/usr/bin/env bash
# Set up (virtualenv, requirements) if needed, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/setup-venv.sh
ruff check .
exec python -m pytest "$@"
