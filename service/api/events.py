"""GET /events: the live feed of job changes as server-sent events (the dashboard's one stream per page)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request

from amllib.errors import AmlError
from service.core.events import Disconnect, EventStream, ascii_number, sse
from service.http.deps import Svc
from service.http.openapi import errors

router = APIRouter(tags=["events"])


@router.get(
    "/events",
    status_code=200,
    response_class=EventStream,
    summary="Every job change as it happens (text/event-stream); resumes after Last-Event-ID",
    responses=errors(json_route=False, ok={"content": {"text/event-stream": {"schema": {"type": "string"}}}}),
)
async def events(
    svc: Svc,
    request: Request,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=80)] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62, description="start after this event id")] = None,
    job: Annotated[str | None, Query(max_length=64, description="only this job's events")] = None,
) -> EventStream:
    """Each event: id (give it back as Last-Event-ID), event = the job kind (run, data, fetch), data = the job.

    For one run job (`?job=`), `event: log` events carry its new log lines as they are written
    (`{"text": ...}`); their ids, like the job's in that stream, are `<event id>.<log offset>`.
    """
    seq_text, _, offset_text = (last_event_id or "").partition(".")
    start, ahead = svc.feed.start_after(seq_text or None, after)
    found = svc.store.get(job) if job else None
    if found is None or found.kind != "run":
        return EventStream(
            _until_gone(request, lambda gone: svc.feed.stream(start, gone=gone, job_id=job, ahead=ahead))
        )
    tail = LogTail(svc, found.id, ascii_number(offset_text) or 0)
    return EventStream(
        _until_gone(
            request,
            lambda gone: svc.feed.stream(
                start, gone=gone, job_id=job, extra=tail.new_lines, ident=tail.ident, ahead=ahead
            ),
        )
    )


async def _until_gone(
    request: Request, make: Callable[[Callable[[], bool]], AsyncIterator[bytes]]
) -> AsyncIterator[bytes]:
    """The stream `make` builds, ended when its client disconnects or its dashboard session is signed out."""
    disconnect = Disconnect(request.receive)
    session = request.scope.get("state", {}).get("session")
    signer = request.app.state.signer

    def gone() -> bool:
        return disconnect() or (session is not None and signer.revoked(session))

    try:
        async for chunk in make(gone):
            yield chunk
    finally:
        disconnect.close()


class LogTail:
    """A run's log lines not yet sent to one stream, read from the backend at each wake."""

    def __init__(self, svc: Svc, job_id: str, offset: int) -> None:
        self.svc, self.job_id, self.offset = svc, job_id, offset

    def ident(self, seq: int) -> str:
        return f"{seq}.{self.offset}"

    async def new_lines(self, seq: int) -> list[bytes]:
        job = self.svc.store.get(self.job_id)
        if job is None or job.backend_run_id is None:
            return []
        try:
            text, offset = await self.svc.calls(self.svc.backend.read_log, job.backend_run_id, self.offset)
        except AmlError:
            return []
        if not text:
            return []
        self.offset = offset
        return [sse(self.ident(seq), "log", json.dumps({"text": text}))]
