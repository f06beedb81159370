#!/usr/bin/env bash
# Set up what the tests need if it is missing (virtualenv and requirements, the Azurite emulator
# from npm, Debian's Chromium for the dashboard tests), then lint and run every test.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/setup-venv.sh
if [ ! -x tests/azurite/node_modules/.bin/azurite-blob ]; then
  npm install --prefix tests/azurite --no-audit --no-fund --silent
fi
if ! command -v chromium >/dev/null; then
  # Playwright drives the system's Chromium: its own browser download is not available here.
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
ruff check .
exec python -m pytest "$@"
