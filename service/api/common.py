"""Accepting a job (idempotently) and answering with it, shared by every POST and GET of a job."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse

from amllib.backends.base import RunStatus
from service.actions import Services, create_job
from service.core.job_kinds import location
from service.core.schemas import render
from service.core.store import Job
from service.errors import KIND_STATUS


async def accept(
    svc: Services,
    *,
    kind: str,
    spec: Mapping[str, Any],
    fingerprint: dict[str, Any],
    idempotency_key: str | None,
    callback_url: str | None,
    wait: float | None,
    created_by: str,
) -> JSONResponse:
    """Store the job before answering, start it, and answer 202 with it (or the original, for a replay)."""
    stored, created = await create_job(
        svc,
        kind=kind,
        spec=spec,
        fingerprint=fingerprint,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
        created_by=created_by,
    )
    headers = {"Location": location(stored)}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return await answer(svc, stored, wait=wait, status=202, headers=headers)


async def answer(
    svc: Services, job: Job, *, wait: float | None, status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The job as JSON; after ?wait=, an error status fitting how a Failed or Canceled job ended."""
    if wait:
        job = await svc.jobs.wait(job.id, wait) or job
    body = render(job, svc.backend.name)
    if wait and job.status in (RunStatus.FAILED, RunStatus.CANCELED):
        kind = job.error_kind or ("canceled" if job.status == RunStatus.CANCELED else "backend")
        failed = {"error": kind, "detail": job.error or f"job {job.status.lower()}", "job": body}
        return JSONResponse(failed, status_code=KIND_STATUS.get(kind, 502), headers=headers)
    if wait and job.status == RunStatus.COMPLETED:
        status = 200
    return JSONResponse(body, status_code=status, headers=headers)
