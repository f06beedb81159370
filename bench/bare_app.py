"""Baselines for the benches: a bare FastAPI constant endpoint and a one-row SQLite read (bench/api_latency.py),
and a bare streaming upload (bench/upload_throughput.py): the body into one file, hashed, fsynced."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from pathlib import Path

from fastapi import FastAPI, Request

app = FastAPI()
_db = sqlite3.connect(os.environ.get("BENCH_DB", ":memory:"), check_same_thread=False)
_db.execute("CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, body TEXT)")
_db.execute("INSERT OR REPLACE INTO t VALUES ('x', '{\"status\": \"Completed\"}')")


@app.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@app.get("/const")
async def const() -> dict:
    return {"status": "ok"}


@app.get("/row")
async def row() -> dict:
    (body,) = _db.execute("SELECT body FROM t WHERE id = 'x'").fetchone()
    return {"body": body}


@app.post("/ingest")
async def ingest(request: Request) -> dict:
    """What the service's own stack can take in: the body streamed into one file with sha256 and fsync."""
    digest, size = hashlib.sha256(), 0
    folder = Path(os.environ.get("BENCH_DIR", tempfile.gettempdir()))
    with tempfile.NamedTemporaryFile(dir=folder, prefix="ingest-", delete=True) as handle:
        async for chunk in request.stream():
            digest.update(chunk)
            handle.write(chunk)
            size += len(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    return {"bytes": size, "sha256": digest.hexdigest()}
