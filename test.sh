#!/usr/bin/env bash
# Set up what the tests need if it is missing (virtualenv and requirements, the Azurite emulator
# and Biome from npm, Debian's Chromium and wrk for the dashboard tests and the benchmarks' smoke runs), then
# lint, type-check and run every test.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/setup-venv.sh requirements-dev.txt
if [ ! -x tests/azurite/node_modules/.bin/azurite-blob ]; then
  npm install --prefix tests/azurite --no-audit --no-fund --silent
fi
# Biome formats and lints the dashboard's scripts (biome.jsonc); axe-core checks every page's accessibility.
if [ ! -x tests/lint/node_modules/.bin/biome ] || [ ! -f tests/lint/node_modules/axe-core/axe.min.js ]; then
  npm install --prefix tests/lint --no-audit --no-fund --silent
fi
# Playwright drives Debian's Chromium (its own browser download is not available here); the benchmarks'
# smoke runs load the service with wrk; the job store's PostgreSQL tests start a throw-away server of
# Debian's postgresql (tests/postgres.py), unless AZML_TEST_DATABASE_URL names one.
missing=""
command -v chromium >/dev/null || missing="$missing chromium"
command -v wrk >/dev/null || missing="$missing wrk"
if [ -z "${AZML_TEST_DATABASE_URL:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing="$missing postgresql"
fi
if [ -n "$missing" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
ruff check .
hadolint Dockerfile
tests/lint/node_modules/.bin/biome ci --colors=off .
# Types: mypy from a virtualenv of its own (requirements-typecheck.txt says why), reading this project's packages.
typecheck=.venv-typecheck
want=$(sha256sum requirements-typecheck.txt | cut -d' ' -f1)
if [ "$(cat "$typecheck/.installed" 2>/dev/null)" != "$want" ]; then
  rm -rf "$typecheck" && python3 -m venv "$typecheck"
  "$typecheck/bin/pip" install --quiet -r requirements-typecheck.txt
  echo "$want" > "$typecheck/.installed"
fi
"$typecheck/bin/mypy" --python-executable .venv/bin/python
# The layers and no import circles ([tool.importlinter] in pyproject.toml): its report only when a contract breaks.
layers=$(lint-imports --no-cache --no-logo) || { echo "$layers"; exit 1; }
echo "$layers" | tail -n 1
exec python -m pytest "$@"
