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
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

from amllib.backends.base import TERMINAL, RunStatus
from service.core.events import EventFeed
from service.core.store import Job, JobStore, LeaseLost, Tx

log = logging.getLogger("service")

ORDER = [RunStatus.QUEUED, RunStatus.PREPARING, RunStatus.RUNNING, RunStatus.FINALIZING]
TERMINAL_NAMES = frozenset(str(s) for s in TERMINAL)


def replica_id() -> str:
    """Who this process is to other replicas: host, pid and a random part (a restarted process is a new one)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


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
        replica: str | None = None,
        lease_seconds: float = 30.0,
    ) -> None:
        """replica: who this process is to the other replicas; a job it creates is its to carry out
        (leased for lease_seconds, which the worker renews)."""
        self.store = store
        self.replica = replica or replica_id()
        self.lease_seconds = lease_seconds
        self.render = render
        self.feed = feed
        self.on_end = on_end  # told of every job that ends (metrics)
        self._events: dict[str, asyncio.Event] = {}
        feed.on_job = self._wake_waiters  # a change made on another replica wakes ?wait= here too

    def _publish(self, tx: Tx, job: Job) -> None:
        tx.append_event(topic=f"{job.kind}", job_id=job.id, data=self.render(job))

    def insert(self, tx: Tx, job: Job) -> tuple[Job, bool]:
        """Store a new job in the caller's transaction (a schedule's fire records its tick in the same one),
        leased to this replica; (the job already holding its Idempotency-Key, False) when there is one.
        Once committed, the caller calls created() for each new job."""
        lease = None
        if not is_terminal(job.status):
            job.owner, lease = self.replica, self.lease_seconds
        stored, created = tx.insert_job(job, lease=lease)
        if created:
            self._publish(tx, stored)
        return stored, created

    async def create(self, job: Job) -> tuple[Job, bool]:
        """Store a new job, leased to this replica; (the job already holding its Idempotency-Key, False)
        when there is one."""
        stored, created = await self.store.write(lambda tx: self.insert(tx, job))
        if created:
            self.feed.changed()
        return stored, created

    async def transition(self, job_id: str, status: str, *, as_owner: bool = False, **fields: Any) -> Job | None:
        """Move job_id to status (setting fields with it); None if that move is not allowed.

        Checked and written in one transaction with the row locked, so concurrent writers on any
        replica can only move a job forward. as_owner: only while this replica holds the job's
        lease (LeaseLost otherwise: another replica carries it on).
        """

        def apply(tx: Tx) -> Job | None:
            found = self._row(tx, job_id, as_owner=as_owner)
            current = found.status
            if not allowed(current, status):
                return None
            now = time.time()
            changes = dict(fields, status=status)
            if status != RunStatus.QUEUED and current == RunStatus.QUEUED and "started_at" not in changes:
                changes["started_at"] = now
            if is_terminal(status):
                changes.setdefault("finished_at", now)
            job = tx.update_job(job_id, changes)
            self._publish(tx, job)
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

    def _row(self, tx: Tx, job_id: str, *, as_owner: bool) -> Job:
        job = tx.job(job_id, lock=True)
        if job is None:
            raise LookupError(f"job {job_id} is not in the job store")
        if as_owner and job.owner != self.replica:
            raise LeaseLost(f"job {job_id} is carried out by {job.owner or 'nobody'} now, not by {self.replica}")
        return job

    async def update(self, job_id: str, *, as_owner: bool = False, **fields: Any) -> Job:
        """Change fields other than status (results so far, flags); as_owner as for transition()."""
        if "status" in fields:
            raise ValueError("status changes go through transition()")

        def apply(tx: Tx) -> Job:
            self._row(tx, job_id, as_owner=as_owner)
            job = tx.update_job(job_id, fields)
            self._publish(tx, job)
            return job

        job = await self.store.write(apply)
        self._wake(job_id)
        return job

    async def change_spec(self, job_id: str, changes: dict[str, Any]) -> Job:
        """Merge `changes` into the job's spec (a None value removes the key), in one transaction with the
        row locked: two changes at once never lose one another's fields."""

        def apply(tx: Tx) -> Job:
            spec = dict(self._row(tx, job_id, as_owner=False).spec)
            for key, value in changes.items():
                if value is None:
                    spec.pop(key, None)
                else:
                    spec[key] = value
            job = tx.update_job(job_id, {"spec": spec})
            self._publish(tx, job)
            return job

        job = await self.store.write(apply)
        self._wake(job_id)
        return job

    def _wake(self, job_id: str) -> None:
        self.feed.changed()
        self._wake_waiters(job_id)

    def _wake_waiters(self, job_id: str) -> None:
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
