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
from service.core.store import Job, JobStore
from service.core.worker import Worker
from tests.conftest import make_settings


def test_a_fetch_accepted_before_a_restart_that_unset_the_output_root_fails_with_the_reason(tmp_path: Path) -> None:
    """Found by mypy: the worker read settings.output_root.resolve() with the setting unset (AttributeError)."""
    settings = make_settings(tmp_path / "aml", output_root=None)

    async def life() -> Job:
        store = JobStore(tmp_path / "jobs.sqlite")
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
