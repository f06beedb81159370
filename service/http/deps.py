"""Shared route dependencies as Annotated aliases, so routes stay flat and short."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from service.actions import Services

MAX_WAIT = 3600.0


async def get_services(request: Request) -> Services:
    """Async, so FastAPI does not hop to a thread pool for it on every request."""
    return request.app.state.services


Svc = Annotated[Services, Depends(get_services)]


async def get_caller(request: Request) -> str:
    """Who is asking, as the auth middleware named them: a token's name, or loopback."""
    return request.scope.get("state", {}).get("caller", "anonymous")


Caller = Annotated[str, Depends(get_caller)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)]
Cursor = Annotated[
    str | None, Query(max_length=64, pattern="^[0-9eE.+~-]+$", description="next_cursor of the previous page")
]
Limit = Annotated[int, Query(ge=1, le=200, description="how many items a page holds")]
CallbackUrlQuery = Annotated[str | None, Query(max_length=2048, description="POSTed the job when it ends")]
Wait = Annotated[
    float | None, Query(ge=0, le=MAX_WAIT, description="hold the answer until the job ends or this many seconds")
]


# The same `wait` for routes that read it themselves (GET /runs/{id}), with the same 422 when it is bad.
WAIT_PARAMETER = {
    "name": "wait",
    "in": "query",
    "required": False,
    "description": "hold the answer until the job ends or this many seconds",
    "schema": {"anyOf": [{"type": "number", "minimum": 0, "maximum": MAX_WAIT}, {"type": "null"}], "title": "Wait"},
}
RUN_ID_PARAMETER = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string", "title": "Run Id"}}


class PlainRoute(APIRoute):
    """A route whose endpoint takes the Request and answers a Response itself: documented like any other
    (its parameters given in openapi_extra), but spared FastAPI's per-request dependency solving and
    validation, for the polls that dominate a service's traffic (bench/api_latency.py)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


def wait_parameter(request: Request) -> float | None:
    """?wait= as the Wait alias would give it, or the RequestValidationError it would raise."""
    raw = request.query_params.get("wait")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = None
    if value is None or not (0 <= value <= MAX_WAIT):  # also refuses nan and inf
        message = f"Input should be a number between 0 and {MAX_WAIT:g}"
        raise RequestValidationError([{"loc": ("query", "wait"), "msg": message, "type": "value_error"}])
    return value
