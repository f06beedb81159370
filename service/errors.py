"""Domain errors to HTTP statuses, in one table, and the app's error handlers.

Every error body is JSON: {"error": <kind>, "detail": <readable message>}, plus
"job" when a waited-on job ended Failed. Nothing else leaks: an unexpected
exception is logged here and answered 500 without its trace.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import Send

from amllib.errors import (
    KINDS,
    AmlError,
    InvalidInput,
)
from service.observe.logs import current_request_id

log = logging.getLogger("service")


class TooLarge(InvalidInput):
    """An upload over AZML_MAX_UPLOAD_BYTES or AZML_MAX_UPLOAD_FILES."""


class UnsupportedMedia(InvalidInput):
    """A request body of a type this endpoint does not take."""


class NotAuthenticated(InvalidInput):
    """A request whose signature, token or HMAC does not check out (chat platforms' own schemes)."""


class BodyTimeout(InvalidInput):
    """A request body that stopped arriving for longer than AZML_BODY_TIMEOUT."""


class Forbidden(InvalidInput):
    """The caller may not do this (a requester approving their own move)."""


class StoreUnavailable(AmlError):
    """The job store (PostgreSQL) could not be reached, after retrying on fresh connections.

    Never a job's outcome: the worker carries the job on once the store answers again. A request
    meeting it is answered 503 with Retry-After.
    """


class Busy(AmlError):
    """The service is at a limit it keeps for its own sake (uploads or archives in progress): try again soon."""


RETRY_AFTER_SECONDS = 2  # what a 503 tells the caller to wait


# (exception class, kind, HTTP status), most specific first: the service's own errors, then the library's
# (their kinds from amllib.errors.KINDS, shared with the scripts).
STATUS = {
    "unsafe_path": 400,
    "invalid": 422,
    "not_found": 404,
    "conflict": 409,
    "run_failed": 502,
    "smoke_test_failed": 422,  # the version asked for cannot serve: choose another
    "backend": 502,
    "config": 500,
    "internal": 500,
}
TABLE: list[tuple[type[Exception], str, int]] = [
    (TooLarge, "too_large", 413),
    (BodyTimeout, "body_timeout", 408),
    (NotAuthenticated, "unauthorized", 401),
    (Forbidden, "forbidden", 403),
    (UnsupportedMedia, "unsupported_media_type", 415),
    (StoreUnavailable, "store_unavailable", 503),
    (Busy, "busy", 503),
    *((cls, kind, STATUS[kind]) for cls, kind in KINDS),
]
KIND_STATUS = {kind: status for _, kind, status in TABLE} | {"canceled": 409}


def classify(exc: BaseException) -> tuple[str, int]:
    """The kind and HTTP status of an error."""
    for cls, kind, status in TABLE:
        if isinstance(exc, cls):
            return kind, status
    return "internal", 500


def error_response(status: int, kind: str, detail: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": kind, "detail": detail, **extra}, status_code=status)


async def send_error(send: Send, status: int, kind: str, detail: str, *, headers: list | None = None) -> None:
    """The same JSON error, sent by middleware that answers before any route runs."""
    body = json.dumps({"error": kind, "detail": detail}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def _excerpt(text: str, limit: int = 60) -> str:
    """A field name from the caller (a dict key) shown short: an error never echoes a huge value."""
    return text if len(text) <= limit else text[:limit] + "…"


def validation_detail(exc: RequestValidationError) -> tuple[str, list[str]]:
    parts, fields = [], []
    for error in exc.errors():
        loc = [_excerpt(str(p)) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header")]
        name = ".".join(loc) or "body"
        fields.append(name)
        parts.append(f"{name}: {error.get('msg', 'invalid')}")
    return "; ".join(parts), fields


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this request's path (HEAD wherever GET is: HeadAsGet)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"}) if hasattr(route, "matches") else (None, None)
        if match is not None and match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the JSON shape above."""

    @app.exception_handler(AmlError)
    async def on_aml_error(request: Request, exc: AmlError) -> JSONResponse:
        kind, status = classify(exc)
        if status >= 500:
            log.warning("%s %s failed: %s", request.method, request.url.path, exc)
        response = error_response(status, kind, str(exc))
        if status == 503:
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, fields = validation_detail(exc)
        return error_response(422, "invalid", detail, fields=fields)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette names the methods of the first route on the path; GET /runs is another
            headers["Allow"] = ", ".join(allowed_methods(request))
        return JSONResponse({"error": kind, "detail": str(exc.detail)}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(ClientDisconnect)
    async def on_disconnect(request: Request, exc: ClientDisconnect) -> JSONResponse:
        log.info("%s %s: the client went away before its body arrived", request.method, request.url.path)
        return error_response(400, "client_disconnected", "the client disconnected before the body arrived")

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        response = error_response(500, "internal", "internal error; the service log has the details")
        request_id = current_request_id()  # this answer is sent outside RequestLog, which sets the header
        if request_id:
            response.headers["X-Request-ID"] = request_id
        return response
