"""The job store in one SQLite file: the embedded default, for one service process.

Every write goes through one writer thread that batches queued operations into one
transaction, so competing writers never wait on SQLite's lock; readers use their own
connections, which WAL never blocks. One process only: SQLite on a network share (Azure
Files) is a known way to get locking errors; several replicas use PostgreSQL.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from service.core.migrations import upgrade
from service.core.store import Dialect, JobStore, Tx

T = TypeVar("T")
_BATCH = 64
SQLITE = Dialect(postgres=False)


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
        self._queue: queue.Queue[tuple[Callable[[Tx], Any], Future] | None] = queue.Queue()

    def submit(self, operation: Callable[[Tx], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((operation, future))
        return future

    def stop(self) -> None:
        self._queue.put(None)
        self.join(timeout=10)

    def run(self) -> None:
        db = _connect(self._path, synchronous=self._synchronous)
        tx = Tx(db, SQLITE)
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
            self._run_batch(db, tx, batch)
        db.close()

    @staticmethod
    def _run_batch(db: sqlite3.Connection, tx: Tx, batch: list) -> None:
        outcomes: list[tuple[Future, bool, Any]] = []
        db.execute("BEGIN IMMEDIATE")
        for operation, future in batch:
            if not future.set_running_or_notify_cancel():
                continue  # its caller was cancelled (the service is stopping)
            db.execute("SAVEPOINT op")
            try:
                outcomes.append((future, True, operation(tx)))
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


class SqliteStore(JobStore):
    """Jobs in one file, written through one writer thread, read from per-thread connections."""

    dialect = SQLITE
    shared = False

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        """synchronous=FULL (the default): a committed job is on disk before POST answers, even across a power loss."""
        path.parent.mkdir(parents=True, exist_ok=True)
        upgrade(f"sqlite:///{path}")
        _connect(path).close()  # WAL from now on, before connections race to switch it (one would be refused)
        self.path = path
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
            db = self._local.db = _connect(self.path)
            with self._readers_lock:
                self._readers.append(db)
        return db

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        return self._reader().execute(sql, tuple(params)).fetchall()

    async def write(self, operation: Callable[[Tx], T]) -> T:
        """Run operation(tx) in the writer thread, inside its transaction."""
        return await asyncio.wrap_future(self._writer.submit(operation))
