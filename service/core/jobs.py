"""Job states and the one function that changes them.

Statuses are Azure ML's names (amllib RunStatus). A job only moves forward through
Queued → Preparing → Running → Finalizing and ends in one of the terminal states,
which it never leaves. Every change of status goes through Jobs.transition, which
checks and writes in one step in the store's writer thread, together with the
event that tells the live feed (service/core/events.py), then wakes whoever waits on
the job (?wait=) or streams the feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from amllib.backends.base import TERMINAL, RunStatus
from service.core.events import EventFeed
from service.core.store import Job, JobStore

log = logging.getLogger("service")

ORDER = [RunStatus.QUEUED, RunStatus.PREPARING, RunStatus.RUNNING, RunStatus.FINALIZING]
TERMINAL_NAMES = frozenset(str(s) for s in TERMINAL)


def is_terminal(status: str) -> bool:
    return status in TERMINAL_NAMES


def allowed(current: str, new: str) -> bool:
    """Forward only; terminal states are final; staying put (to update fields) is allowed."""
    if is_terminal(current):
        return False
    if is_terminal(new) or new == current:
        return True
    return ORDER.index(RunStatus(new)) > ORDER.index(RunStatus(current))


class Jobs:
    """The owner of job status: creation, transitions and waiting for them; every change is also an event."""

    def __init__(
        self,
        store: JobStore,
        *,
        render: Callable[[Job], dict[str, Any]],
        feed: EventFeed,
        on_end: Callable[[Job], None] | None = None,
    ) -> None:
        self.store = store
        self.render = render
        self.feed = feed
        self.on_end = on_end  # told of every job that ends (metrics)
        self._events: dict[str, asyncio.Event] = {}

    def _publish(self, db: sqlite3.Connection, job: Job) -> None:
        JobStore.append_event(db, topic=f"{job.kind}", job_id=job.id, data=self.render(job))

    async def create(self, job: Job) -> tuple[Job, bool]:
        """Store a new job; (the job already holding its Idempotency-Key, False) when there is one."""

        def insert(db: sqlite3.Connection) -> tuple[Job, bool]:
            stored, created = JobStore.insert_row(db, job)
            if created:
                self._publish(db, stored)
            return stored, created

        stored, created = await self.store.write(insert)
        if created:
            self.feed.changed()
        return stored, created

    async def transition(self, job_id: str, status: str, **fields: Any) -> Job | None:
        """Move job_id to status (setting fields with it); None if that move is not allowed."""

        def apply(db: sqlite3.Connection) -> Job | None:
            (current,) = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if not allowed(current, status):
                return None
            now = time.time()
            changes = dict(fields, status=status)
            if status != RunStatus.QUEUED and current == RunStatus.QUEUED and "started_at" not in changes:
                changes["started_at"] = now
            if is_terminal(status):
                changes.setdefault("finished_at", now)
            job = JobStore.update_row(db, job_id, changes)
            self._publish(db, job)
            return job

        job = await self.store.write(apply)
        if job is not None:
            self._wake(job_id)
            if is_terminal(job.status):
                self._log_end(job)
                if self.on_end is not None:
                    self.on_end(job)
        return job

    @staticmethod
    def _log_end(job: Job) -> None:
        took = (job.finished_at or 0) - job.created_at
        if job.status == RunStatus.COMPLETED:
            log.info("%s job %s completed in %.1f s", job.kind, job.id, took)
        else:
            log.info("%s job %s ended %s after %.1f s: %s", job.kind, job.id, job.status, took, job.error_kind)

    async def update(self, job_id: str, **fields: Any) -> Job:
        """Change fields other than status (results so far, flags)."""
        if "status" in fields:
            raise ValueError("status changes go through transition()")

        def apply(db: sqlite3.Connection) -> Job:
            job = JobStore.update_row(db, job_id, fields)
            self._publish(db, job)
            return job

        job = await self.store.write(apply)
        self._wake(job_id)
        return job

    def _wake(self, job_id: str) -> None:
        self.feed.changed()
        event = self._events.pop(job_id, None)
        if event is not None:
            event.set()

    async def wait(self, job_id: str, timeout: float) -> Job | None:
        """The job once it is terminal, or as it is when timeout seconds have passed."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.store.get(job_id)
            remaining = deadline - time.monotonic()
            if job is None or is_terminal(job.status) or remaining <= 0:
                return job
            event = self._events.setdefault(job_id, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=min(remaining, 1.0))
