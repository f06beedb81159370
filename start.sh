#!/usr/bin/env bash
# Set up (virtualenv, requirements, .env) and run on the embedded local backend:
# the demo flow once (upload the Titanic data, train, register, fetch), then the service.
#   ./start.sh            demo, then serve on 127.0.0.1:8000
#   ./start.sh --no-demo  serve only
set -euo pipefail
cd "$(dirname "$0")"
. scripts/setup-venv.sh
[ -f .env ] || cp .env.sample .env

if [ "${1:-}" != "--no-demo" ]; then
  python scripts/demo.py
fi
if [ -f service/app.py ]; then
  # Open event streams never end by themselves: give them 5 s at shutdown, then close them.
  # --no-proxy-headers: the app believes X-Forwarded-For only from AZML_TRUSTED_PROXIES (uvicorn would from 127.0.0.1).
  exec uvicorn service.app:app --host "${AZML_HOST:-127.0.0.1}" --port "${AZML_PORT:-8000}" --no-proxy-headers \
    --timeout-graceful-shutdown 5
fi
