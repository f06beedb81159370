#!/usr/bin/env bash
# Set up (virtualenv, requirements, .env) and run on the embedded local backend: the demo flow the
# first time (upload the Titanic data, train, register, fetch), then the service.
#   ./start.sh            the demo on the first start only, then serve on 127.0.0.1:8000
#   ./start.sh --demo     the demo again (a new model version), then serve
#   ./start.sh --no-demo  serve only
set -euo pipefail
cd "$(dirname "$0")"
case "${1:-}" in
  "") demo=(--once) ;;
  --demo) demo=() ;;
  --no-demo) demo=(--skip) ;;
  *) echo "usage: ./start.sh [--demo | --no-demo]" >&2; exit 2 ;;
esac
. scripts/setup-venv.sh requirements.txt
[ -f .env ] || cp .env.sample .env
host=${AZML_HOST:-127.0.0.1}
port=${AZML_PORT:-8000}
# Before the demo: a port already taken (another service, an earlier start) would fail the bind after it.
python scripts/port-free.py "$host" "$port"
python scripts/demo.py "${demo[@]}"
# Open event streams never end by themselves: give them 5 s at shutdown, then close them.
# --no-proxy-headers: the app believes X-Forwarded-For only from AZML_TRUSTED_PROXIES (uvicorn would from 127.0.0.1).
exec uvicorn service.app:app --host "$host" --port "$port" --no-proxy-headers --timeout-graceful-shutdown 5
