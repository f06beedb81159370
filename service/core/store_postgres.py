"""The job store on PostgreSQL: several replicas of the service share it.

psycopg 3 with its connection pool. A write is one transaction on a pooled connection,
run in a thread (never on the event loop); two replicas' writes to one job are kept
apart by row locks (Tx.job(lock=True)), an Idempotency-Key by the unique constraint.
Every replica LISTENs on one channel; each committed event NOTIFYs it (payload: the
event's id), so a change made on replica A reaches an /events stream on replica B in
milliseconds (the stream then reads the rows, never the payload).

A lost connection (a restarted or failed-over server, pg_terminate_backend, a network cut) is
retried on a fresh one: a write for up to WRITE_BUDGET seconds with back-off, in its writer
thread; a read (on the event loop) once at once, then StoreUnavailable (503 + Retry-After).
Once a read finds no connection to be had, reads fail at once while a thread tries the server
every PROBE_SECONDS, so an outage never stalls the event loop. A write is safe to run again when its first commit's
answer was lost: every operation either checks the row first or conflicts on a key
(Tx.insert_job finds its own row), and an event written twice is the same state told twice.
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
from psycopg_pool import ConnectionPool, PoolTimeout

from service.core.migrations import upgrade
from service.core.store import EVENT_CHANNEL, Dialect, JobStore, Tx
from service.errors import StoreUnavailable

log = logging.getLogger("service")
T = TypeVar("T")
POSTGRES = Dialect(postgres=True)
WRITERS = 8
RETRIES = 5  # a deadlock or serialization failure is retried (the transaction did nothing)
LOST = (psycopg.OperationalError, psycopg.InterfaceError)  # the connection or server went away (PoolTimeout too)
WRITE_BUDGET = 15.0  # seconds a write keeps trying fresh connections before StoreUnavailable
READ_WAIT = 0.25  # seconds a read (on the event loop) waits for a pooled connection before the store counts as down
PROBE_SECONDS = 0.5  # while it is down, a thread tries it this often; reads fail at once until it answers


class PostgresStore(JobStore):
    """Jobs in a PostgreSQL database that any number of service replicas share."""

    dialect = POSTGRES
    shared = True

    def __init__(self, url: str, *, pool_size: int = 16) -> None:
        upgrade(url)
        self.url = url
        self._pool = ConnectionPool(
            url,
            min_size=2,
            max_size=pool_size,
            kwargs={"autocommit": True},
            open=True,
            name="job-store",
        )
        self._down_since: float | None = None  # set while reads find the server unreachable
        self._probing = threading.Lock()
        self._checking = threading.Lock()
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
        if self._down_since is not None:  # a prober thread says when it answers again: never wait on the loop
            raise StoreUnavailable(
                f"the job store has been unreachable for {time.monotonic() - self._down_since:.0f} s"
            )
        for attempt in range(2):  # a dead pooled connection is dropped by the pool; the next one is fresh
            try:
                with self._pool.connection(timeout=READ_WAIT) as db:
                    return db.execute(POSTGRES.sql(sql), tuple(params)).fetchall()
            except LOST as exc:
                if attempt == 1 or isinstance(exc, PoolTimeout):  # no connection to be had: the server is down
                    self._went_down()
                    raise StoreUnavailable(f"the job store could not be reached ({type(exc).__name__})") from exc
                self._check_soon()  # drop every idle connection the same cut killed (off the event loop)
        raise AssertionError("unreachable")

    def _went_down(self) -> None:
        """Reads fail at once from now on; a thread tries the server every PROBE_SECONDS until it answers."""
        with self._probing:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
        log.warning("the job store is unreachable; reads answer 503 until it is back")
        threading.Thread(target=self._probe, name="job-store-probe", daemon=True).start()

    def _probe(self) -> None:
        while not self._closing.wait(PROBE_SECONDS):
            try:
                with self._pool.connection(timeout=PROBE_SECONDS) as db:
                    db.execute("SELECT 1")
            except LOST:
                continue
            log.warning("the job store answers again")
            self._down_since = None
            return

    def _check_soon(self) -> None:
        """Test the pool's idle connections in a thread of their own, one such check at a time."""
        if self._checking.acquire(blocking=False):

            def check() -> None:
                try:
                    self._pool.check()
                finally:
                    self._checking.release()

            threading.Thread(target=check, name="job-store-check", daemon=True).start()

    async def write(self, operation: Callable[[Tx], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writers, self._write, operation)

    def _write(self, operation: Callable[[Tx], T]) -> T:
        deadline, pause, conflicts = time.monotonic() + WRITE_BUDGET, 0.05, 0
        while True:
            try:
                with self._pool.connection(timeout=max(0.1, deadline - time.monotonic())) as db, db.transaction():
                    return operation(Tx(db, POSTGRES))
            except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure):
                conflicts += 1
                if conflicts == RETRIES:
                    raise
                time.sleep(0.01 * conflicts)
            except LOST as exc:
                if time.monotonic() + pause > deadline or self._closing.is_set():
                    raise StoreUnavailable(f"the job store could not be reached ({type(exc).__name__})") from exc
                log.warning("a job store write lost its connection (%s); trying a fresh one", type(exc).__name__)
                self._pool.check()
                time.sleep(pause)
                pause = min(pause * 2, 2.0)

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
