"""Accepting a job (idempotently) and answering with it, shared by every POST and GET of a job."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from typing import Any

from fastapi.responses import JSONResponse

from amllib.backends.base import RunStatus
from amllib.errors import Conflict, InvalidInput, NotFound, quoted
from service import logs
from service.deps import Services
from service.errors import KIND_STATUS
from service.jobs import is_terminal
from service.schemas import render
from service.store import Job

log = logging.getLogger("service")


def request_hash(payload: dict[str, Any]) -> str:
    """What makes two requests 'the same' for Idempotency-Key."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def location(job: Job) -> str:
    return {"run": "/runs/", "data": "/data/", "fetch": "/models/fetch/"}[job.kind] + job.id


async def create_job(
    svc: Services,
    *,
    kind: str,
    spec: dict[str, Any],
    fingerprint: dict[str, Any],
    idempotency_key: str | None,
    callback_url: str | None,
    created_by: str,
) -> tuple[Job, bool]:
    """Store a job and start it; for a replayed Idempotency-Key, (the original job, False). Every caller's way in."""
    job = Job(
        id=f"{kind}_{uuid.uuid4().hex[:20]}",
        kind=kind,
        status=RunStatus.QUEUED,
        spec={**spec, "created_by": created_by},
        created_at=time.time(),
        idempotency_key=f"{kind}:{idempotency_key}" if idempotency_key else None,
        request_hash=request_hash(fingerprint),
        callback_url=callback_url,
    )
    stored, created = await svc.jobs.create(job)
    if not created and stored.request_hash != job.request_hash:
        raise Conflict(
            f"Idempotency-Key {quoted(idempotency_key)} was already used with a different request (job {stored.id})"
        )
    if created:
        logs.bind_job(stored.id)
        log.info("%s job %s accepted from %s", kind, stored.id, created_by)
        svc.worker.start(stored)
    return stored, created


async def accept(
    svc: Services,
    *,
    kind: str,
    spec: dict[str, Any],
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


async def request_cancel(svc: Services, job: Job) -> Job:
    """Ask a run to stop (the worker tells the backend); Conflict if it has already ended."""
    if is_terminal(job.status):
        raise Conflict(f"run {job.id} has already ended {job.status}")
    return await svc.jobs.update(job.id, cancel_requested=True)


_NOUN = {"run": "run", "data": "data upload", "fetch": "fetch"}


def find(svc: Services, job_id: str, kind: str) -> Job:
    """A job by its id; a run job also by its backend run id (a model version's run_id links here)."""
    job = svc.store.get(job_id, kind=kind)
    if job is None and kind == "run":
        job = svc.store.by_backend_run(job_id)
    if job is None:
        raise NotFound(f"{_NOUN[kind]} job {quoted(job_id)} not found")
    return job


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


def page(
    svc: Services,
    kind: str,
    *,
    status: str | None,
    experiment: str | None,
    cursor: str | None,
    limit: int,
    data_version: str | None = None,
    search: str | None = None,
    ids: list[str] | None = None,
) -> dict[str, Any]:
    """Newest first; next_cursor fetches the following page."""
    before = None
    if cursor:
        if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):
            raise InvalidInput(f"cursor {quoted(cursor)} is not one this service gave out")
        before = int(cursor)
    jobs = svc.store.page(
        kind,
        status=status,
        experiment=experiment,
        data_version=data_version,
        search=search,
        ids=ids,
        before_seq=before,
        limit=limit + 1,
    )
    more = len(jobs) > limit
    jobs = jobs[:limit]
    return {
        "items": [render(j, svc.backend.name) for j in jobs],
        "next_cursor": str(jobs[-1].seq) if more and jobs else None,
    }
