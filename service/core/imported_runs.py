"""Runs the service did not start (the scripts, the studio, other tools), taken into the job store.

Each becomes a run job marked `imported`, its id derived from the run's, watched like the
service's own until it ends (never registered by the service: whoever started it does that).
The run importer (service/background/run_import.py) brings them in by the list; a request for a
backend run id the store does not hold yet brings that one in at once (service/actions.find),
so the link run-training.py prints works the moment it is printed.
"""

from __future__ import annotations

import hashlib
from typing import Any

from amllib.backends.base import RunInfo
from amllib.errors import MetricsUnavailable
from amllib.training import STARTED_BY
from service.core.jobs import Jobs
from service.core.store import Job
from service.core.worker import Worker, run_result, scalar_metrics


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


async def import_run(worker: Worker, jobs: Jobs, info: RunInfo) -> Job | None:
    """The new job of a run no job owns yet (None: one does, its own or the service's, or it was swept)."""
    store = jobs.store
    if store.by_backend_run(info.run_id) is not None or store.swept(info.run_id):
        return None
    owner = info.tags.get("job_id")
    if owner and store.get(str(owner)) is not None:
        return None  # the service's own run, its id about to be recorded
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
        try:
            job.result["metrics"] = scalar_metrics(await worker.calls(worker.backend.get_metrics, info.run_id))
        except MetricsUnavailable as exc:
            job.result["metrics_error"] = worker.errors.redact(str(exc))
    stored, created = await jobs.create(job)
    if created and not info.status.terminal:
        worker.start(stored, resumed=True)
    return stored if created else None
