"""Brings the runs the service did not start (the scripts, the studio, other tools) into the job store.

Every AZML_RUN_IMPORT_SECONDS the backend is asked for runs created since the last
look; each one no job owns becomes a run job marked `imported`, watched like the
service's own until it ends (never registered by the service: whoever started it
does that). So GET /runs lists every run once, and its live changes reach the
event feed like any other. A service-started run carries its job id as a tag and
is never imported twice; the job id of an imported run is derived from its run id.
"""

from __future__ import annotations

import logging
import time

from amllib.backends.base import RunInfo
from service.background.periodic import Leader, every
from service.core.imported_runs import import_run
from service.core.jobs import Jobs
from service.core.worker import Worker

log = logging.getLogger("service")
OVERLAP = 120.0  # look this far behind the newest run seen: a run can appear a moment after a newer one
MODEL_LOOKUP_SECONDS = 900.0  # how long after an imported run ends to look for the version its starter registers


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
        return await import_run(self.worker, self.jobs, info) is not None

    async def _find_model_versions(self) -> None:
        """An imported run's starter registers its model after the run ends: pick the version up then."""
        for job in self.store.imported_without_model(since=time.time() - MODEL_LOOKUP_SECONDS):
            versions = await self.worker.calls(self.worker.backend.versions_of_run, job.backend_run_id)
            if versions:
                made = {"name": versions[0].name, "version": versions[0].version}
                await self.jobs.update(job.id, result={**job.result, "model_version": made})
