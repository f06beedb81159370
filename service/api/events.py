"""GET /events: the live feed of job changes as server-sent events (the dashboard's one stream per page)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from service.deps import Svc
from service.openapi import errors

router = APIRouter(tags=["events"])


@router.get(
    "/events",
    response_class=EventSourceResponse,
    summary="Every job change as it happens (text/event-stream); resumes after Last-Event-ID",
    responses=errors(json_route=False),
)
async def events(
    svc: Svc,
    request: Request,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62, description="start after this event id")] = None,
    job: Annotated[str | None, Query(max_length=64, description="only this job's events")] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Each event: id (give it back as Last-Event-ID), event = the job kind (run, data, fetch), data = the job."""
    start = svc.feed.start_after(last_event_id, after)
    async for event in svc.feed.stream(start, gone=request.is_disconnected, job_id=job):
        yield event
