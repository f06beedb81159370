"""Schedules: retrain on a cron, every so often or on new data, then promote (service/schedules.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from service import schedules
from service.core.schemas import ScheduleChange, ScheduleRequest
from service.http.answers import Deleted, Schedule, Schedules
from service.http.deps import Caller, Svc
from service.http.openapi import BODY_ERRORS, errors, ok

router = APIRouter(tags=["schedules"])
Name = Annotated[str, PathParam(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="the schedule's name")]


@router.post(
    "/schedules",
    response_model=None,
    status_code=201,
    summary="A schedule: a trigger (cron, every, on_data), the run it starts, an alias to promote to",
    responses=errors(409, *BODY_ERRORS) | {201: ok(Schedule, "the schedule made")},
)
async def create_schedule(svc: Svc, caller: Caller, request: ScheduleRequest) -> JSONResponse:
    return JSONResponse(await schedules.create(svc, request, caller=caller), status_code=201)


@router.get(
    "/schedules",
    response_model=None,
    summary="Every schedule with its next fire and last fires",
    responses=errors(ok=ok(Schedules)),
)
async def list_schedules(svc: Svc) -> dict:
    return await schedules.list_schedules(svc)


@router.get(
    "/schedules/{name}",
    response_model=None,
    summary="One schedule: next fire, the last fires with their runs and outcomes",
    responses=errors(404, ok=ok(Schedule)),
)
async def get_schedule(svc: Svc, name: Name) -> dict:
    return await schedules.schedule_body(svc, name)


@router.patch(
    "/schedules/{name}",
    response_model=None,
    summary="Pause or resume (from now on: missed ticks are not made up), or change the trigger, run, promotion",
    responses=errors(404, *BODY_ERRORS, ok=ok(Schedule)),
)
async def change_schedule(svc: Svc, name: Name, request: ScheduleChange) -> dict:
    return await schedules.change(svc, name, request)


@router.delete(
    "/schedules/{name}",
    response_model=None,
    summary="Remove a schedule (its runs stay)",
    responses=errors(404, ok=ok(Deleted)),
)
async def delete_schedule(svc: Svc, name: Name) -> dict:
    return await schedules.delete(svc, name)
