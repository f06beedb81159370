"""Job persistence in SQLite: every write goes through one writer thread; reads are direct.

No business rules live here (service/core/jobs.py owns status). Writes are queued to a
single thread that batches them into one transaction, so competing writers never
wait on SQLite's lock; readers use their own connections, which WAL never blocks.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    request_hash TEXT,
    spec TEXT NOT NULL,
    result TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    error_kind TEXT,
    backend_run_id TEXT,
    callback_url TEXT,
    callback_status TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_kind_seq ON jobs (kind, seq);
CREATE INDEX IF NOT EXISTS jobs_backend_run ON jobs (backend_run_id) WHERE backend_run_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    job_id TEXT,
    created_at REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_job ON events (job_id, seq);
CREATE TABLE IF NOT EXISTS revoked_sessions (
    session_id TEXT PRIMARY KEY,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS swept_runs (
    run_id TEXT PRIMARY KEY,
    swept_at REAL NOT NULL,
    discarded INTEGER NOT NULL DEFAULT 0
);
"""
EVENTS_KEPT = 100_000  # the feed keeps this many; a client further behind is told to reload
_COLUMNS = (
    "seq, id, kind, status, idempotency_key, request_hash, spec, result, error, error_kind, backend_run_id, "
    "callback_url, callback_status, cancel_requested, created_at, started_at, finished_at"
)
_BATCH = 64


@dataclass
class Job:
    """One row of the jobs table, with spec and result decoded."""

    id: str
    kind: str
    status: str
    spec: dict[str, Any]
    created_at: float
    seq: int = 0
    idempotency_key: str | None = None
    request_hash: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None
    backend_run_id: str | None = None
    callback_url: str | None = None
    callback_status: str | None = None
    cancel_requested: bool = False
    started_at: float | None = None
    finished_at: float | None = None

    @classmethod
    def from_row(cls, row: tuple) -> Job:
        values = dict(zip(_COLUMNS.split(", "), row, strict=True))
        values["spec"] = json.loads(values["spec"])
        values["result"] = json.loads(values["result"])
        values["cancel_requested"] = bool(values["cancel_requested"])
        return cls(**values)


def _connect(path: Path, *, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """WAL, so readers never wait for the writer; the writer's `synchronous` decides what survives a power loss."""
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    mode = synchronous.upper()
    if mode not in ("FULL", "NORMAL"):  # AZML_DB_SYNCHRONOUS is checked already; nothing else reaches the SQL
        raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
    db.execute(f"PRAGMA synchronous={mode}")
    return db


class _Writer(threading.Thread):
    """The one thread that writes: runs queued operations, many per transaction."""

    def __init__(self, path: Path, *, synchronous: str) -> None:
        super().__init__(name="job-store-writer", daemon=True)
        self._path = path
        self._synchronous = synchronous
        self._queue: queue.Queue[tuple[Callable[[sqlite3.Connection], Any], Future] | None] = queue.Queue()

    def submit(self, operation: Callable[[sqlite3.Connection], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((operation, future))
        return future

    def stop(self) -> None:
        self._queue.put(None)
        self.join(timeout=10)

    def run(self) -> None:
        db = _connect(self._path, synchronous=self._synchronous)
        while True:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < _BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            self._run_batch(db, batch)
        db.close()

    def _run_batch(self, db: sqlite3.Connection, batch: list) -> None:
        outcomes: list[tuple[Future, bool, Any]] = []
        db.execute("BEGIN IMMEDIATE")
        for operation, future in batch:
            if not future.set_running_or_notify_cancel():
                continue  # its caller was cancelled (the service is stopping)
            db.execute("SAVEPOINT op")
            try:
                outcomes.append((future, True, operation(db)))
                db.execute("RELEASE op")
            except Exception as exc:
                db.execute("ROLLBACK TO op")
                db.execute("RELEASE op")
                outcomes.append((future, False, exc))
        try:
            db.execute("COMMIT")
        except Exception as exc:  # the whole batch is lost; tell every caller
            db.execute("ROLLBACK")
            outcomes = [(future, False, exc) for future, _, _ in outcomes]
        for future, ok, value in outcomes:
            future.set_result(value) if ok else future.set_exception(value)


class JobStore:
    """Jobs by id, written through one writer thread, read from per-thread connections."""

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        """synchronous=FULL (the default): a committed job is on disk before POST answers, even across a power loss."""
        path.parent.mkdir(parents=True, exist_ok=True)
        db = _connect(path)
        try:
            db.executescript(_SCHEMA)
        finally:
            db.close()  # sqlite3's own context manager only commits; it never closes
        self._path = path
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer = _Writer(path, synchronous=synchronous)
        self._writer.start()

    def close(self) -> None:
        self._writer.stop()
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for db in readers:
            db.close()

    def _reader(self) -> sqlite3.Connection:
        """This thread's connection: one per thread of the service's bounded pools, all closed by close()."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = _connect(self._path)
            with self._readers_lock:
                self._readers.append(db)
        return db

    # -- reads ---------------------------------------------------------------
    def get(self, job_id: str, *, kind: str | None = None) -> Job | None:
        row = self._reader().execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        job = Job.from_row(row) if row else None
        return job if job and (kind is None or job.kind == kind) else None

    def page(
        self,
        kind: str,
        *,
        status: str | None = None,
        experiment: str | None = None,
        data_version: str | None = None,
        search: str | None = None,
        ids: list[str] | None = None,
        before_seq: int | None = None,
        limit: int = 50,
    ) -> list[Job]:
        """Jobs of a kind, newest first. `search`: a prefix of the job id or backend run id, or the exact
        experiment, script or who started it; `ids`: these jobs (by job id or backend run id)."""
        clauses: list[str] = ["kind = ?"]
        params: list[Any] = [kind]
        if search:
            end = search + "\U0010ffff"  # a prefix as a range, which the id indexes serve
            clauses.append(
                "((id >= ? AND id < ?) OR (backend_run_id >= ? AND backend_run_id < ?)"
                " OR json_extract(spec, '$.experiment') = ? OR json_extract(spec, '$.script') = ?"
                " OR json_extract(spec, '$.started_by') = ? OR json_extract(spec, '$.created_by') = ?)"
            )
            params += [search, end, search, end, search, search, search, search]
        if ids:
            marks = ",".join("?" * len(ids))
            clauses.append(f"(id IN ({marks}) OR backend_run_id IN ({marks}))")
            params += [*ids, *ids]
        if status:
            clauses.append("status = ?")
            params.append(status)
        if experiment:
            clauses.append("json_extract(spec, '$.experiment') = ?")
            params.append(experiment)
        if data_version:
            clauses.append("json_extract(result, '$.data_version') = ?")
            params.append(data_version)
        if before_seq is not None:
            clauses.append("seq < ?")
            params.append(before_seq)
        sql = f"SELECT {_COLUMNS} FROM jobs WHERE {' AND '.join(clauses)} ORDER BY seq DESC LIMIT ?"
        return [Job.from_row(r) for r in self._reader().execute(sql, (*params, limit))]

    def unfinished(self, terminal: frozenset[str]) -> list[Job]:
        marks = ",".join("?" * len(terminal))
        sql = f"SELECT {_COLUMNS} FROM jobs WHERE status NOT IN ({marks}) ORDER BY seq"
        return [Job.from_row(r) for r in self._reader().execute(sql, tuple(terminal))]

    def undelivered_callbacks(self, terminal: frozenset[str]) -> list[Job]:
        marks = ",".join("?" * len(terminal))
        sql = (
            f"SELECT {_COLUMNS} FROM jobs WHERE status IN ({marks}) AND ((callback_url IS NOT NULL "
            "AND callback_status IS NULL) OR (json_extract(spec, '$.notify') IS NOT NULL "
            "AND json_extract(result, '$.notice') IS NULL)) ORDER BY seq"
        )
        return [Job.from_row(r) for r in self._reader().execute(sql, tuple(terminal))]

    # -- writes --------------------------------------------------------------
    async def write(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run operation(db) in the writer thread, inside its transaction."""
        return await asyncio.wrap_future(self._writer.submit(operation))

    @staticmethod
    def insert_row(db: sqlite3.Connection, job: Job) -> tuple[Job, bool]:
        """Insert job; if its idempotency key is taken, (the existing job, False) instead; for writer operations."""
        if job.idempotency_key:
            sql = f"SELECT {_COLUMNS} FROM jobs WHERE idempotency_key = ?"
            row = db.execute(sql, (job.idempotency_key,)).fetchone()
            if row:
                return Job.from_row(row), False
        cursor = db.execute(
            "INSERT INTO jobs (id, kind, status, idempotency_key, request_hash, spec, result, error, backend_run_id, "
            "callback_url, created_at, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job.id,
                job.kind,
                job.status,
                job.idempotency_key,
                job.request_hash,
                json.dumps(job.spec),
                json.dumps(job.result),
                job.error,
                job.backend_run_id,
                job.callback_url,
                job.created_at or time.time(),
                job.started_at,
                job.finished_at,
            ),
        )
        job.seq = _row_id(cursor)
        return job, True

    # -- the event feed --------------------------------------------------------
    @staticmethod
    def append_event(db: sqlite3.Connection, *, topic: str, job_id: str | None, data: dict[str, Any]) -> int:
        """Add an event in the caller's transaction (so a change and its event commit together)."""
        seq = _row_id(
            db.execute(
                "INSERT INTO events (topic, job_id, created_at, data) VALUES (?, ?, ?, ?)",
                (topic, job_id, time.time(), json.dumps(data)),
            )
        )
        if seq % 1000 == 0:
            db.execute("DELETE FROM events WHERE seq <= ?", (seq - EVENTS_KEPT,))
        return seq

    def events_after(
        self, seq: int, *, job_id: str | None = None, limit: int = 500, with_job: bool = False
    ) -> list[tuple]:
        """(seq, topic, data as JSON text) of the events after seq, oldest first (with_job: job_id before data)."""
        columns = "seq, topic, job_id, data" if with_job else "seq, topic, data"
        params: tuple[Any, ...]
        if job_id is None:
            sql, params = f"SELECT {columns} FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        else:
            sql = f"SELECT {columns} FROM events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?"
            params = (job_id, seq, limit)
        return self._reader().execute(sql, params).fetchall()

    def event_bounds(self) -> tuple[int, int]:
        """The oldest kept and the newest event seq (0, 0 when there is none)."""
        low, high = self._reader().execute("SELECT MIN(seq), MAX(seq) FROM events").fetchone()
        return low or 0, high or 0

    def counts(self) -> dict[tuple[str, str], int]:
        """How many jobs there are of each (kind, status)."""
        rows = self._reader().execute("SELECT kind, status, COUNT(*) FROM jobs GROUP BY kind, status")
        return {(kind, status): count for kind, status, count in rows}

    def imported_without_model(self, *, since: float) -> list[Job]:
        """Imported runs that completed after `since` and have no model version recorded yet."""
        sql = (
            f"SELECT {_COLUMNS} FROM jobs WHERE kind = 'run' AND status = 'Completed' AND finished_at > ? "
            "AND json_extract(spec, '$.imported') = 1 AND json_extract(result, '$.model_version') IS NULL"
        )
        return [Job.from_row(r) for r in self._reader().execute(sql, (since,))]

    def expired(self, terminal: frozenset[str], *, ended_before: float, limit: int = 1000) -> list[Job]:
        """Ended jobs that finished before that time and owe no callback or chat notice, oldest first."""
        marks = ",".join("?" * len(terminal))
        sql = f"SELECT {_COLUMNS} FROM jobs WHERE status IN ({marks}) AND finished_at < ? ORDER BY finished_at LIMIT ?"
        owed = {job.id for job in self.undelivered_callbacks(terminal)}
        rows = self._reader().execute(sql, (*terminal, ended_before, limit))
        return [job for job in map(Job.from_row, rows) if job.id not in owed]

    def swept(self, run_id: str) -> bool:
        """Whether the retention sweep removed this backend run's job (so it is never imported again)."""
        return self._reader().execute("SELECT 1 FROM swept_runs WHERE run_id = ?", (run_id,)).fetchone() is not None

    def undiscarded_runs(self) -> list[str]:
        """Runs whose jobs the sweep removed but whose files it has not removed yet (it was stopped between)."""
        return [r[0] for r in self._reader().execute("SELECT run_id FROM swept_runs WHERE discarded = 0")]

    @staticmethod
    def remove_jobs(db: sqlite3.Connection, jobs: list[Job], *, terminal: frozenset[str], now: float) -> list[Job]:
        """Delete these jobs (if still ended) with their events; their runs are recorded as swept; for the writer."""
        removed = []
        marks = ",".join("?" * len(terminal))
        for job in jobs:
            gone = db.execute(f"DELETE FROM jobs WHERE id = ? AND status IN ({marks})", (job.id, *terminal))
            if not gone.rowcount:
                continue
            db.execute("DELETE FROM events WHERE job_id = ?", (job.id,))
            if job.backend_run_id:
                JobStore.record_swept(db, job.backend_run_id, now=now)
            removed.append(job)
        return removed

    @staticmethod
    def record_swept(db: sqlite3.Connection, run_id: str, *, now: float) -> None:
        db.execute("INSERT OR IGNORE INTO swept_runs VALUES (?, ?, 0)", (run_id, now))

    @staticmethod
    def mark_discarded(db: sqlite3.Connection, run_id: str) -> None:
        db.execute("UPDATE swept_runs SET discarded = 1 WHERE run_id = ?", (run_id,))

    @staticmethod
    def forget_swept(db: sqlite3.Connection, *, before: float) -> None:
        """Drop old events and the records of runs swept long ago (the importer never looks back that far)."""
        db.execute("DELETE FROM events WHERE created_at < ?", (before,))
        db.execute("DELETE FROM swept_runs WHERE discarded = 1 AND swept_at < ?", (before,))

    # -- dashboard sessions signed out before they expired ------------------------
    def revoked_sessions(self, *, now: float) -> dict[str, float]:
        """Session ids revoked and not yet expired, with when each expires."""
        rows = self._reader().execute("SELECT session_id, expires FROM revoked_sessions WHERE expires > ?", (now,))
        return dict(rows.fetchall())

    async def revoke_session(self, session_id: str, *, expires: float) -> None:
        def revoke(db: sqlite3.Connection) -> None:
            db.execute("INSERT OR REPLACE INTO revoked_sessions VALUES (?, ?)", (session_id, expires))
            db.execute("DELETE FROM revoked_sessions WHERE expires < ?", (time.time(),))  # nothing to refuse any more

        await self.write(revoke)

    def by_backend_run(self, run_id: str) -> Job | None:
        row = self._reader().execute(f"SELECT {_COLUMNS} FROM jobs WHERE backend_run_id = ?", (run_id,)).fetchone()
        return Job.from_row(row) if row else None

    @staticmethod
    def update_row(db: sqlite3.Connection, job_id: str, fields: dict[str, Any]) -> Job:
        """Set columns of one row (spec/result given as dicts) and return the row; for writer operations."""
        encoded = {k: json.dumps(v) if k in ("spec", "result") else v for k, v in fields.items()}
        if encoded:
            assignments = ", ".join(f"{name} = ?" for name in encoded)
            db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*encoded.values(), job_id))
        return Job.from_row(db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone())


def _row_id(cursor: sqlite3.Cursor) -> int:
    """The rowid an INSERT just made (sqlite3 types it Optional: None only when nothing was inserted)."""
    if cursor.lastrowid is None:
        raise RuntimeError("the INSERT made no row")
    return cursor.lastrowid
