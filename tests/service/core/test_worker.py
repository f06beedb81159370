"""service/core/worker.py in process: jobs carried out against the local backend, without HTTP."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from amllib.backends.base import TERMINAL, RunStatus
from amllib.backends.local import LocalBackend
from service.core.events import EventFeed
from service.core.jobs import Jobs
from service.core.schemas import render
from service.core.store import Job
from service.core.store_sqlite import SqliteStore
from service.core.worker import Worker, _renew
from tests.conftest import make_settings


def test_a_fetch_accepted_before_a_restart_that_unset_the_output_root_fails_with_the_reason(tmp_path: Path) -> None:
    """Found by mypy: the worker read settings.output_root.resolve() with the setting unset (AttributeError)."""
    settings = make_settings(tmp_path / "aml", output_root=None)

    async def life() -> Job:
        store = SqliteStore(tmp_path / "jobs.sqlite")
        jobs = Jobs(store, render=lambda job: render(job, "local"), feed=EventFeed(store))
        worker = Worker(settings=settings, backend=LocalBackend(settings), jobs=jobs)
        try:
            spec = {"model": "m", "version": None, "use_best": False, "output_path": "m"}
            job = Job(id="fetch_1", kind="fetch", status=RunStatus.QUEUED, spec=spec, created_at=time.time())
            stored, _ = await jobs.create(job)
            worker.start(stored)
            while store.get("fetch_1").status not in TERMINAL:
                await asyncio.sleep(0.05)
            return store.get("fetch_1")
        finally:
            await worker.close()
            store.close()

    ended = asyncio.run(life())
    assert ended.status == RunStatus.FAILED
    assert "AZML_OUTPUT_ROOT is not set" in ended.error


def _fetch_job(job_id: str) -> Job:
    spec = {"model": "m", "version": None, "use_best": False, "output_path": "m"}
    return Job(id=job_id, kind="fetch", status=RunStatus.QUEUED, spec=spec, created_at=time.time())


async def _until_ended(store: SqliteStore, job_id: str, timeout: float = 10) -> Job:
    deadline = time.monotonic() + timeout
    while (job := store.get(job_id)).status not in TERMINAL and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return job


def test_a_job_created_while_leases_are_renewed_is_not_taken_for_lost(tmp_path: Path) -> None:
    """Found by the kill -9 replica test: the renewal read this replica's jobs, a new job was stored and
    started meanwhile, and the renewal then cancelled it as "lost" (it stayed Running for ever)."""
    settings = make_settings(tmp_path / "aml", output_root=None)

    async def life() -> Job:
        store = SqliteStore(tmp_path / "jobs.sqlite")
        jobs = Jobs(store, render=lambda job: render(job, "local"), feed=EventFeed(store), replica="me")
        worker = Worker(settings=settings, backend=LocalBackend(settings), jobs=jobs)
        real_write = store.write

        async def write(operation):  # the renewal answers, then a request stores and starts a job
            result = await real_write(operation)
            if getattr(operation, "func", None) is _renew and store.get("fetch_new") is None:
                stored, _ = await jobs.create(_fetch_job("fetch_new"))
                worker.start(stored)
            return result

        store.write = write
        try:
            await worker.renew_leases()
            return await _until_ended(store, "fetch_new")
        finally:
            await worker.close()
            store.close()

    ended = asyncio.run(life())
    assert ended.status == RunStatus.FAILED and "AZML_OUTPUT_ROOT" in ended.error  # carried out, not dropped


def test_a_job_this_replica_owns_that_no_task_carries_is_taken_up_at_the_next_renewal(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "aml", output_root=None)

    async def life() -> Job:
        store = SqliteStore(tmp_path / "jobs.sqlite")
        jobs = Jobs(store, render=lambda job: render(job, "local"), feed=EventFeed(store), replica="me")
        worker = Worker(settings=settings, backend=LocalBackend(settings), jobs=jobs)
        try:
            await jobs.create(_fetch_job("fetch_orphan"))  # stored as ours, never started
            await worker.renew_leases()
            return await _until_ended(store, "fetch_orphan")
        finally:
            await worker.close()
            store.close()

    assert asyncio.run(life()).status == RunStatus.FAILED
