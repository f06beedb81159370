"""Brings the runs the service did not start (the scripts, the studio, other tools) into the job store.

Every AZML_RUN_IMPORT_SECONDS the backend is asked for runs created since the last
look; each one no job owns becomes a run job marked `imported`, watched like the
service's own until it ends (never registered by the service: whoever started it
does that). So GET /runs lists every run once, and its live changes reach the
event feed like any other. A service-started run carries its job id as a tag and
is never imported twice; the job id of an imported run is derived from its run id.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from amllib.backends.base import RunInfo
from amllib.training import STARTED_BY
from service.background.periodic import Leader, every
from service.core.jobs import Jobs
from service.core.store import Job
from service.core.worker import Worker, run_result, scalar_metrics

log = logging.getLogger("service")
OVERLAP = 120.0  # look this far behind the newest run seen: a run can appear a moment after a newer one
MODEL_LOOKUP_SECONDS = 900.0  # how long after an imported run ends to look for the version its starter registers


def imported_job_id(run_id: str) -> str:
    return "run_" + hashlib.sha256(run_id.encode()).hexdigest()[:20]


def imported_spec(info: RunInfo) -> dict[str, Any]:
    return {
        "experiment": info.experiment,
        "script": info.script,
        "model": None,
        "datapath": info.datapath,
        "compute": info.compute,
        "estimators": info.estimators,
        "args": info.args,
        "imported": True,
        "created_by": str(info.tags.get(STARTED_BY) or "another tool"),
    }


class RunImporter:
    """One loop per service; `worker` watches what it imports until the run ends."""

    def __init__(self, *, worker: Worker, jobs: Jobs, interval: float, lead: Leader | None = None) -> None:
        """lead: whether this replica is the one to import (periodic.every); None: always."""
        self.worker = worker
        self.lead = lead
        self.jobs = jobs
        self.store = jobs.store
        self.interval = interval
        self.mark = 0.0

    async def run_forever(self) -> None:
        await every(self.interval, self.once, what="importing runs from the backend", lead=self.lead)

    async def once(self) -> int:
        """Import what is new since the last look; how many runs were new."""
        backend = self.worker.backend
        days = self.worker.settings.retention_days
        floor = time.time() - days * 86400.0 if days else 0.0  # what is older is the retention sweep's
        infos = await self.worker.calls(backend.list_runs, created_after=max(floor, self.mark - OVERLAP))
        imported = 0
        for info in infos:
            imported += await self._import(info)
            self.mark = max(self.mark, info.created_at)
        await self._find_model_versions()
        return imported

    async def _import(self, info: RunInfo) -> bool:
        if self.store.by_backend_run(info.run_id) is not None or self.store.swept(info.run_id):
            return False
        owner = info.tags.get("job_id")
        if owner and self.store.get(str(owner)) is not None:
            return False  # the service's own run, its id about to be recorded
        job = Job(
            id=imported_job_id(info.run_id),
            kind="run",
            status=info.status,
            spec=imported_spec(info),
            created_at=info.created_at,
            started_at=info.started_at,
            finished_at=info.finished_at,
            backend_run_id=info.run_id,
            idempotency_key=f"import:{info.run_id}",
            error=info.error,
            result=run_result(info, {}),
        )
        if info.status.terminal:
            metrics = await self.worker.calls(self.worker.backend.get_metrics, info.run_id)
            job.result["metrics"] = scalar_metrics(metrics)
        stored, created = await self.jobs.create(job)
        if created and not info.status.terminal:
            self.worker.start(stored, resumed=True)
        return created

    async def _find_model_versions(self) -> None:
        """An imported run's starter registers its model after the run ends: pick the version up then."""
        for job in self.store.imported_without_model(since=time.time() - MODEL_LOOKUP_SECONDS):
            versions = await self.worker.calls(self.worker.backend.versions_of_run, job.backend_run_id)
            if versions:
                made = {"name": versions[0].name, "version": versions[0].version}
                await self.jobs.update(job.id, result={**job.result, "model_version": made})
