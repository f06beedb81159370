"""What any caller may do with jobs, whatever way it came in: HTTP, the dashboard or a chat command.

Transport-free: no request, response or status code here. The routes (service/api), the page
(service/ui) and chat-ops (service/chatops) call these with the caller's identity, so one place
decides what a job is, how it is found, and what may be asked of it; the core under it (jobs,
store, worker) carries the jobs out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from amllib.backends.base import Backend, RunStatus
from amllib.errors import Conflict, InvalidInput, NotFound, quoted
from amllib.names import check_name, check_script_args
from amllib.paths import check_script, safe_relpath
from amllib.settings import Settings
from service.core.backend_calls import BackendCalls
from service.core.events import EventFeed
from service.core.imported_runs import import_run
from service.core.job_bodies import JobBodies
from service.core.job_kinds import KINDS, RunSpec
from service.core.jobs import Jobs, is_terminal
from service.core.schemas import RunChange, RunRequest, render
from service.core.store import NEWEST, Job, JobStore, Order
from service.core.worker import Worker
from service.observe import logs

log = logging.getLogger("service")


@dataclass
class Services:
    """What every caller's actions work with, built once in the app's lifespan."""

    settings: Settings
    backend: Backend
    store: JobStore
    jobs: Jobs
    worker: Worker
    feed: EventFeed
    calls: BackendCalls  # the backend's blocking calls, off the event loop
    bodies: JobBodies = dataclasses.field(init=False)  # jobs' JSON answers kept per stored row (GET /runs/{id})

    def __post_init__(self) -> None:
        self.bodies = JobBodies(self.backend.name)


def request_hash(payload: dict[str, Any]) -> str:
    """What makes two requests 'the same' for Idempotency-Key."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def new_job(
    *,
    kind: str,
    spec: Mapping[str, Any],
    fingerprint: dict[str, Any],
    idempotency_key: str | None,
    callback_url: str | None,
    created_by: str,
) -> Job:
    return Job(
        id=f"{kind}_{uuid.uuid4().hex[:20]}",
        kind=kind,
        status=RunStatus.QUEUED,
        spec={**spec, "created_by": created_by},
        created_at=time.time(),
        idempotency_key=f"{kind}:{idempotency_key}" if idempotency_key else None,
        request_hash=request_hash(fingerprint),
        callback_url=callback_url,
    )


async def create_job(
    svc: Services,
    *,
    kind: str,
    spec: Mapping[str, Any],
    fingerprint: dict[str, Any],
    idempotency_key: str | None,
    callback_url: str | None,
    created_by: str,
) -> tuple[Job, bool]:
    """Store a job and start it; for a replayed Idempotency-Key, (the original job, False). Every caller's way in."""
    job = new_job(
        kind=kind,
        spec=spec,
        fingerprint=fingerprint,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
        created_by=created_by,
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


async def request_cancel(svc: Services, job: Job) -> Job:
    """Ask a run to stop (the worker tells the backend); Conflict if it has already ended."""
    if is_terminal(job.status):
        raise Conflict(f"run {job.id} has already ended {job.status}")
    return await svc.jobs.update(job.id, cancel_requested=True)


async def change_run(svc: Services, job: Job, change: RunChange) -> Job:
    """Name, describe, tag or archive a run (the API, the dashboard and chat alike). An empty name or
    description removes it; a run archived while a model version was made from it keeps that version (the
    run is hidden from lists, never removed by archiving)."""
    given = change.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {}
    for key in ("name", "description"):
        if key in given:
            changes[key] = given[key] or None
    if "tags" in given:
        changes["tags"] = {k: str(v) for k, v in (given["tags"] or {}).items()} or None
    if "archived" in given and given["archived"] is not None:
        changes["archived"] = True if given["archived"] else None
    if not changes:
        return job
    return await svc.jobs.change_spec(job.id, changes)


async def find(svc: Services, job_id: str, kind: str) -> Job:
    """A job by its id; a run job also by its backend run id (a model version's run_id links here), one the
    run importer has not brought in yet looked up in the backend and brought in now."""
    job = await svc.store.read(svc.store.get, job_id, kind=kind)
    if job is None and kind == "run":
        job = await svc.store.read(svc.store.by_backend_run, job_id) or await _import_now(svc, job_id)
    if job is None:
        raise NotFound(f"{KINDS[kind].noun} job {quoted(job_id)} not found")
    return job


_misses: dict[str, float] = {}  # backend run ids just looked up and not found: not asked again for a while
MISS_SECONDS = 10.0


async def _import_now(svc: Services, run_id: str) -> Job | None:
    """The run's job, imported from the backend at once; None when the backend has no such run.

    Only while the importer is on (AZML_RUN_IMPORT_SECONDS > 0), for plain names (never a job id),
    and a miss is remembered for MISS_SECONDS, so made-up ids can't turn into a stream of backend calls.
    """
    now = time.monotonic()
    if svc.settings.run_import_seconds <= 0 or run_id.startswith("run_") or _misses.get(run_id, 0.0) > now:
        return None
    try:
        check_name(run_id, what="run id")
        info = await svc.calls(svc.backend.get_run, run_id)
    except (InvalidInput, NotFound):  # the backend unreachable is its own error (502), not "no such run"
        if len(_misses) > 10_000:
            _misses.clear()
        _misses[run_id] = now + MISS_SECONDS
        return None
    return await import_run(svc.worker, svc.jobs, info) or await svc.store.read(svc.store.by_backend_run, run_id)


SORT_KEYS = ("created", "started", "duration")
METRIC_SORT = "metrics."
PARAM_SORT = "params."


def ordering(sort: str | None, direction: str | None) -> Order:
    """`sort` (created, started, duration or metrics.<name>) and `order` (asc or desc) as an Order."""
    if direction not in (None, "asc", "desc"):
        raise InvalidInput(f"order {quoted(direction)} is not asc or desc")
    ascending = direction == "asc"
    if sort is None or sort in SORT_KEYS:
        return Order(sort or "created", ascending=ascending)
    for prefix, key in ((METRIC_SORT, "metric"), (PARAM_SORT, "param")):
        name = sort.removeprefix(prefix)
        if sort.startswith(prefix) and name:
            return Order(key, metric=name, ascending=ascending)
    raise InvalidInput(
        f"sort {quoted(sort)} is not one of {', '.join(SORT_KEYS)}, metrics.<metric name> or params.<parameter name>"
    )


MAX_PARAM_FILTERS = 10


def param_filters(query: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The `params.<name>=<value>` query parameters of a runs list: runs whose parameter has that value."""
    found: dict[str, str] = {}
    for key, value in query:
        if not key.startswith(PARAM_SORT):
            continue
        name = key.removeprefix(PARAM_SORT)
        if not name or len(name) > 255 or len(value) > 1024:
            raise InvalidInput(f"query parameter {quoted(key, 60)}: params.<name> (≤ 255) = <value> (≤ 1024)")
        found[name] = value
    if len(found) > MAX_PARAM_FILTERS:
        raise InvalidInput(f"at most {MAX_PARAM_FILTERS} params.<name> filters at once, not {len(found)}")
    return found


def _position(cursor: str, order: Order) -> tuple[float | None, int]:
    """Where a cursor says the page before ended: digits (newest first), else `<value>~<seq>`."""
    refused = InvalidInput(f"cursor {quoted(cursor)} is not one this service gave out")
    value, mark, seq = cursor.rpartition("~")
    if not (seq.isascii() and seq.isdigit() and len(seq) <= 18) or (order == NEWEST) == bool(mark):
        raise refused
    if not value:
        return None, int(seq)
    try:
        number = float(value)
    except ValueError:
        raise refused from None
    if not math.isfinite(number):
        raise refused
    return number, int(seq)


def _cursor(job: Job, order: Order) -> str:
    if order == NEWEST:
        return str(job.seq)
    value = order.value(job)
    return f"{'' if value is None else repr(float(value))}~{job.seq}"


async def page(
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
    archived: bool | None = None,
    with_params: dict[str, str] | None = None,
    order: Order = NEWEST,
) -> dict[str, Any]:
    """Newest first, or in `order`; next_cursor fetches the following page."""
    after = _position(cursor, order) if cursor else None
    jobs = await svc.store.read(
        svc.store.page,
        kind,
        status=status,
        experiment=experiment,
        data_version=data_version,
        search=search,
        ids=ids,
        archived=archived,
        with_params=with_params,
        order=order,
        after=after,
        limit=limit + 1,
    )
    more = len(jobs) > limit
    jobs = jobs[:limit]
    return {
        "items": [render(j, svc.backend.name) for j in jobs],
        "next_cursor": _cursor(jobs[-1], order) if more and jobs else None,
    }


_DEFAULTS = {
    "experiment": "experiment",
    "script": "script",
    "model": "model",
    "datapath": "datapath",
    "compute": "compute_name",
}


def run_spec(svc: Services, request: RunRequest) -> RunSpec:
    """The request with AZML_* defaults filled in, every field checked."""
    spec: dict[str, Any] = {}
    missing = []
    for field, setting in _DEFAULTS.items():
        spec[field] = getattr(request, field) or getattr(svc.settings, setting)
        if not spec[field]:
            missing.append(f"{field} (no AZML_{setting.upper()} default)")
    if missing:
        raise InvalidInput("missing: " + ", ".join(missing))
    check_name(spec["experiment"], what="experiment")
    check_name(spec["model"], what="model")
    check_name(spec["compute"], what="compute")
    check_script(svc.settings.training_dir, spec["script"])
    spec["datapath"] = str(safe_relpath(spec["datapath"], what="datapath"))
    check_script_args(request.args)
    spec["estimators"] = request.estimators
    spec["args"] = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in request.args.items()}
    return cast(RunSpec, spec)
