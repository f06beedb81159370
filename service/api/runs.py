"""POST /runs and the run's status, list, cancel, logs and metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from amllib.backends.base import RunStatus
from amllib.errors import Conflict, InvalidInput, NotFound
from amllib.jsonsafe import json_safe
from service.actions import (
    METRIC_SORT,
    PARAM_SORT,
    change_run,
    find,
    ordering,
    page,
    param_filters,
    request_cancel,
    run_spec,
)
from service.api import archives
from service.api.common import accept, answer
from service.core.delivery import check_callback_url
from service.core.job_bodies import KIND
from service.core.jobs import is_terminal
from service.core.schemas import MAX_NAME, RunChange, RunRequest
from service.core.store import Job
from service.http.answers import RunMetrics, RunOutputs, RunsMetrics
from service.http.deps import (
    RUN_ID_PARAMETER,
    WAIT_PARAMETER,
    Caller,
    Cursor,
    IdempotencyKey,
    Limit,
    PlainRoute,
    Svc,
    Wait,
    wait_parameter,
)
from service.http.openapi import BODY_ERRORS, OUTPUTS_ARCHIVE, RunJob, errors, job, ok, page_of

router = APIRouter(tags=["runs"])

MAX_IDS = 50
MAX_COMPARED = 10


def id_list(ids: str | None, *, most: int) -> list[str] | None:
    """Comma-separated run ids, 1 to `most` of them (InvalidInput names how many were given)."""
    if ids is None:
        return None
    given = [i.strip() for i in ids.split(",") if i.strip()]
    if not 1 <= len(given) <= most:
        raise InvalidInput(f"ids names {len(given)} runs; give 1 to {most}")
    return list(dict.fromkeys(given))  # a run named twice is shown once


@router.get(
    "/runs/metrics",
    response_model=None,
    summary="Every metric's history of several runs in one call (to compare them)",
    responses=errors(404, ok=ok(RunsMetrics)),
)
async def runs_metrics(
    svc: Svc,
    ids: Annotated[
        str, Query(max_length=4096, description=f"comma-separated run ids (job or backend), at most {MAX_COMPARED}")
    ],
) -> dict:
    """In the order asked; a run not found is a 404 naming it, a run not started yet has no metrics."""
    jobs = [await find(svc, run_id, "run") for run_id in id_list(ids, most=MAX_COMPARED) or []]
    histories = await asyncio.gather(
        *(svc.calls(svc.backend.get_metrics, job.backend_run_id) for job in jobs if job.backend_run_id)
    )
    found = iter(histories)
    return {
        "runs": [
            {
                "id": job.id,
                "backend_run_id": job.backend_run_id,
                "metrics": json_safe(next(found)) if job.backend_run_id else {},
            }
            for job in jobs
        ]
    }


async def get_run(request: Request) -> Response:
    """The dashboards' and pipelines' hottest route reads its two parameters itself (a PlainRoute):
    FastAPI's per-request parameter machinery was most of its cost (see bench/api_latency.py)."""
    svc, wait = request.app.state.services, wait_parameter(request)  # a bad wait is a 422 before any lookup
    run_id = request.path_params["run_id"]
    if not wait:  # the poll's answer as made for this very row before, if it was (service/core/job_bodies.py)
        row = await svc.store.read(svc.store.row, run_id)
        if row is not None and row[KIND] == "run":
            return Response(svc.bodies.body(row), media_type="application/json")
    return await answer(svc, await find(svc, run_id, "run"), wait=wait)


router.add_api_route(
    "/runs/{run_id}",
    get_run,
    methods=["GET"],
    summary="A run's status, metrics and model version",
    description="The run job by its id (or its backend run id); with `?wait=N`, held until it ends or N s pass.",
    responses=job(RunJob, accepted=False),
    openapi_extra={"parameters": [RUN_ID_PARAMETER, WAIT_PARAMETER]},
    route_class_override=PlainRoute,
)


@router.post(
    "/runs",
    status_code=202,
    summary="Train a model: submit a run, then register its outputs/",
    responses=job(RunJob, accepted=True) | errors(*BODY_ERRORS),
)
async def submit_run(
    svc: Svc,
    caller: Caller,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = None,
    request: Annotated[RunRequest | None, Body()] = None,
) -> JSONResponse:
    request = request or RunRequest()
    callback = check_callback_url(request.callback_url, svc.settings.callback_host_set)
    spec = run_spec(svc, request)
    return await accept(
        svc,
        kind="run",
        spec=spec,
        fingerprint=request.model_dump(mode="json"),
        idempotency_key=idempotency_key,
        callback_url=callback,
        wait=wait,
        created_by=caller,
    )


@router.get(
    "/runs",
    summary="Runs, newest first",
    description="Filters combine; `params.<name>=<value>` (repeatable, at most 10) keeps the runs whose parameter"
    " (estimators or an `args` key) has that value, e.g. `?params.seed=7`.",
    responses=errors(ok={"model": page_of(RunJob)}),
)
async def list_runs(
    request: Request,
    svc: Svc,
    status: RunStatus | None = None,
    experiment: Annotated[str | None, Query(max_length=MAX_NAME)] = None,
    data_version: Annotated[str | None, Query(max_length=80, description="runs that read this data version")] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_NAME,
            description="a prefix of the run's id or backend run id (the id the scripts print, the Azure ML job"
            " name), or its exact name, experiment, script or who started it",
        ),
    ] = None,
    ids: Annotated[
        str | None, Query(max_length=4096, description=f"comma-separated run ids (job or backend), at most {MAX_IDS}")
    ] = None,
    sort: Annotated[
        str | None,
        Query(
            max_length=MAX_NAME + max(len(METRIC_SORT), len(PARAM_SORT)),
            description="created (the default: newest first), started, duration, metrics.<name> (the last value"
            " the run logged) or params.<name> (a parameter, when a plain number); runs without a value come last",
        ),
    ] = None,
    order: Annotated[Literal["asc", "desc"] | None, Query(description="desc (the default) or asc")] = None,
    archived: Annotated[
        bool | None, Query(description="true: only archived runs; false (the default): the others")
    ] = False,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> dict:
    wanted = id_list(ids or None, most=MAX_IDS)
    return await page(
        svc,
        "run",
        order=ordering(sort, order),
        status=status,
        experiment=experiment,
        data_version=data_version,
        search=q,
        ids=wanted,
        archived=None if wanted else archived,  # runs asked for by id are listed, archived or not
        with_params=param_filters(request.query_params.multi_items()),
        cursor=cursor,
        limit=limit,
    )


@router.patch(
    "/runs/{run_id}",
    summary="Name, describe, tag or archive a run",
    responses=job(RunJob, accepted=False),
)
async def change_run_route(svc: Svc, run_id: str, request: RunChange) -> JSONResponse:
    changed = await change_run(svc, await find(svc, run_id, "run"), request)
    return await answer(svc, changed, wait=None)


@router.post("/runs/{run_id}/cancel", status_code=202, summary="Cancel a run", responses=job(RunJob, accepted=True))
async def cancel_run(svc: Svc, run_id: str, wait: Wait = None) -> JSONResponse:
    job = await request_cancel(svc, await find(svc, run_id, "run"))
    return await answer(svc, job, wait=wait, status=202)


@router.get(
    "/runs/{run_id}/logs",
    response_class=PlainTextResponse,
    summary="The run's log so far",
    responses=errors(404, json_route=False),
)
async def run_logs(svc: Svc, run_id: str, tail: Annotated[int | None, Query(ge=1, le=100_000)] = None) -> str:
    job = await find(svc, run_id, "run")
    if job.backend_run_id is None:
        return ""
    return await svc.calls(svc.backend.get_log, job.backend_run_id, tail=tail)


@router.get(
    "/runs/{run_id}/metrics",
    response_model=None,
    summary="Every value of every metric the run logged",
    responses=errors(404, ok=ok(RunMetrics)),
)
async def run_metrics(svc: Svc, run_id: str) -> dict:
    job = await find(svc, run_id, "run")
    history = {} if job.backend_run_id is None else await svc.calls(svc.backend.get_metrics, job.backend_run_id)
    return {"id": run_id, "metrics": json_safe(history)}


def _started(job: Job) -> str:
    if job.backend_run_id is None:
        raise Conflict(f"run {job.id} has not started yet ({job.status}): it has no outputs")
    return job.backend_run_id


@router.get(
    "/runs/{run_id}/outputs",
    response_model=None,
    summary="The files the run wrote under outputs/ (what its model version holds)",
    responses=errors(404, 409, ok=ok(RunOutputs)),
)
async def run_outputs(svc: Svc, run_id: str) -> dict:
    job = await find(svc, run_id, "run")
    files = await svc.calls(svc.backend.list_run_outputs, _started(job))
    return {"id": job.id, "backend_run_id": job.backend_run_id, "status": job.status, "files": files}


@router.get(
    "/runs/{run_id}/outputs/archive",
    summary="The run's outputs/ as tar.gz (any ended run, its model registered or not)",
    response_class=StreamingResponse,
    responses=errors(404, 409, ok=OUTPUTS_ARCHIVE),
)
async def download_outputs(svc: Svc, run_id: str) -> StreamingResponse:
    job = await find(svc, run_id, "run")
    backend_run_id = _started(job)
    if not is_terminal(job.status):
        raise Conflict(f"run {job.id} is {job.status}: its outputs can be downloaded once it has ended")

    def fill(folder: Path) -> list[str]:
        files = sorted(svc.backend.download_run_outputs(backend_run_id, folder))
        if not files:
            raise NotFound(f"run {job.id} ({backend_run_id}) wrote no files under outputs/")
        return files

    name = f"{backend_run_id}-outputs.tar.gz"
    return await svc.calls(archives.send, svc.settings.home, fill, prefix="aml-outputs-", filename=name)
