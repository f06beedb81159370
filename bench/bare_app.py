"""Baselines for bench/api_latency.py: a bare FastAPI constant endpoint and a one-row SQLite read."""

from __future__ import annotations

import os
import sqlite3

from fastapi import FastAPI

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
