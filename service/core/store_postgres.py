"""The job store on PostgreSQL: several replicas of the service share it.

psycopg 3 with its connection pool. A write is one transaction on a pooled connection,
run in a thread (never on the event loop); two replicas' writes to one job are kept
apart by row locks (Tx.job(lock=True)), an Idempotency-Key by the unique constraint.
Every replica LISTENs on one channel; each committed event NOTIFYs it (payload: the
event's id), so a change made on replica A reaches an /events stream on replica B in
milliseconds (the stream then reads the rows, never the payload).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

from service.core.migrations import upgrade
from service.core.store import EVENT_CHANNEL, Dialect, JobStore, Tx

log = logging.getLogger("service")
T = TypeVar("T")
POSTGRES = Dialect(postgres=True)
WRITERS = 8
RETRIES = 5  # a deadlock or serialization failure is retried (the transaction did nothing)


class PostgresStore(JobStore):
    """Jobs in a PostgreSQL database that any number of service replicas share."""

    dialect = POSTGRES
    shared = True

    def __init__(self, url: str, *, pool_size: int = 16) -> None:
        upgrade(url)
        self.url = url
        self._pool = ConnectionPool(
            url, min_size=2, max_size=pool_size, kwargs={"autocommit": True}, open=True, name="job-store"
        )
        self._writers = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="job-store-writer")
        self._closing = threading.Event()
        self._listener: threading.Thread | None = None
        self._callbacks: list[Callable[[], object]] = []

    def close(self) -> None:
        self._closing.set()
        self._writers.shutdown(wait=True, cancel_futures=True)
        if self._listener is not None:
            self._listener.join(timeout=5)
        self._pool.close()

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        with self._pool.connection() as db:
            return db.execute(POSTGRES.sql(sql), tuple(params)).fetchall()

    async def write(self, operation: Callable[[Tx], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writers, self._write, operation)

    def _write(self, operation: Callable[[Tx], T]) -> T:
        for attempt in range(RETRIES):
            try:
                with self._pool.connection() as db, db.transaction():
                    return operation(Tx(db, POSTGRES))
            except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure):
                if attempt == RETRIES - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    # -- changes made by other replicas --------------------------------------------
    def on_change(self, callback: Callable[[], object]) -> None:
        """callback() from the listening thread after events are committed (by any replica); a burst calls it once."""
        self._callbacks.append(callback)
        if self._listener is None:
            self._listener = threading.Thread(target=self._listen, name="job-store-listener", daemon=True)
            self._listener.start()

    def _listen(self) -> None:
        while not self._closing.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as db:
                    db.execute(f"LISTEN {EVENT_CHANNEL}")
                    self._tell()  # whatever was committed while nobody listened
                    while not self._closing.is_set():
                        heard = False
                        for _ in db.notifies(timeout=0.5):
                            heard = True
                            break
                        if heard:
                            for _ in db.notifies(timeout=0.005, stop_after=1000):  # the rest of a burst: one wake-up
                                pass
                            self._tell()
            except psycopg.Error as exc:
                if not self._closing.is_set():
                    log.warning("listening for job store events failed (%s); trying again", type(exc).__name__)
                    self._closing.wait(1.0)

    def _tell(self) -> None:
        for callback in self._callbacks:
            try:
                callback()
            except Exception:
                log.exception("a job store change callback failed")
