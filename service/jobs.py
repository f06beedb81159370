"""Job states and the one function that changes them.

Statuses are Azure ML's names (amllib RunStatus). A job only moves forward through
Queued → Preparing → Running → Finalizing and ends in one of the terminal states,
which it never leaves. Every change of status goes through Jobs.transition, which
checks and writes in one step in the store's writer thread, then wakes whoever
waits on the job (?wait=).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from typing import Any

from amllib.backends.base import TERMINAL, RunStatus
from service.store import Job, JobStore

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
    """The owner of job status: transitions and waiting for them."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._events: dict[str, asyncio.Event] = {}

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
            return JobStore.update_row(db, job_id, changes)

        job = await self.store.write(apply)
        if job is not None:
            self._wake(job_id)
        return job

    async def update(self, job_id: str, **fields: Any) -> Job:
        """Change fields other than status (results so far, flags)."""
        if "status" in fields:
            raise ValueError("status changes go through transition()")
        job = await self.store.update(job_id, **fields)
        self._wake(job_id)
        return job

    def _wake(self, job_id: str) -> None:
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
