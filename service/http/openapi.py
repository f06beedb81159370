"""What /openapi.json publishes about responses: every status a route really sends, with its body.

Generated clients trust this, so each route lists the error statuses it (or the
middleware in front of it) can answer, all with the one error body, and the job
bodies it returns. A schemathesis run in the test suite holds the service to it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, create_model

from service.core.job_kinds import DataJob, DeployJob, FetchJob, RunJob

__all__ = ["DataJob", "DeployJob", "ErrorBody", "FetchJob", "RunJob", "errors", "job", "ok", "page_of"]


class ErrorBody(BaseModel):
    """Every error: a kind a program can switch on and a message a person can read."""

    error: str = Field(description="kind: invalid, unsafe_path, not_found, conflict, too_large, run_failed, ...")
    detail: str
    fields: list[str] | None = Field(None, description="the fields a validation error names")
    job: dict[str, Any] | None = Field(None, description="after ?wait=, the job that ended Failed or Canceled")


_ERRORS = {
    400: "an unsafe path or archive entry (absolute, '..', a link or device), nothing written; "
    "or a Host the service does not answer to (AZML_ALLOWED_HOSTS)",
    401: "no bearer token, or a wrong one",
    403: "a read token on a write, or a non-loopback client while no tokens are configured",
    404: "no such job, run, model or version (after ?wait=: the job ended not finding its input)",
    408: "the request body stopped arriving for AZML_BODY_TIMEOUT seconds",
    409: "Idempotency-Key reused with another request; a run already ended; a canceled job after ?wait=",
    413: "the body is over its limit (uploads: AZML_MAX_UPLOAD_BYTES / AZML_MAX_UPLOAD_FILES)",
    415: "a body type this endpoint does not take",
    422: "a field is invalid; `fields` names it",
    429: "too many failed sign-ins or wrong tokens from this client: wait Retry-After seconds",
    502: "after ?wait=: the training run failed or the backend did",
    503: "the job store (PostgreSQL) can't be reached just now, or the service is at a limit it keeps (uploads, "
    "archives in progress): try again after Retry-After seconds",
}
_AFTER_WAIT = (400, 404, 409, 422, 502)


def errors(
    *statuses: int, json_route: bool = True, ok: dict[str, Any] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The listed error statuses, plus 400 (Host), 401/403/429 (every route but /healthz), 422 (every parameter),
    503 (the job store away, a limit reached).

    A route whose own answers are not JSON (logs) names the error body's media type itself; `ok`
    describes its 200 answer, listed first.
    """
    wanted = sorted({400, 401, 403, 422, 429, 503, *statuses})
    body: dict[str, Any] = (
        {"model": ErrorBody}
        if json_route
        else {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    )
    found: dict[int | str, dict[str, Any]] = {200: ok} if ok is not None else {}
    return found | {status: {**body, "description": _ERRORS[status]} for status in wanted}


def job(model: type, *, accepted: bool) -> dict[int | str, dict[str, Any]]:
    """A job answer: 202 while it goes on (POSTs), 200 once read or ended, and the statuses of ?wait=."""
    answers: dict[int | str, dict[str, Any]] = {200: {"model": model, "description": "the job"}}
    if accepted:
        answers[202] = {"model": model, "description": "accepted; the job as it is now (Location: its URL)"}
    return answers | errors(*_AFTER_WAIT, 404)


BODY_ERRORS = (408, 413)


def ok(model: type, description: str = "the answer") -> dict[str, Any]:
    """A route's own JSON answer, by its named shape (service/http/answers.py)."""
    return {"model": model, "description": description}


def page_of(model: type) -> type[BaseModel]:
    """A page of jobs, newest first; next_cursor fetches the following page."""
    items: Any = list[model]  # type: ignore[valid-type]  # a shape given at run time, as create_model wants
    return create_model(f"{model.__name__}Page", items=(items, ...), next_cursor=(str | None, None))


_BINARY = {"schema": {"type": "string", "format": "binary"}}
ARCHIVE = {"description": "the version's files and metadata.json", "content": {"application/gzip": _BINARY}}
OUTPUTS_ARCHIVE = {"description": "the files under the run's outputs/", "content": {"application/gzip": _BINARY}}


def upload_body(folder_request: type[BaseModel]) -> dict[str, Any]:
    """POST /data reads its body itself (streamed), so its forms are declared here."""
    files = {"type": "array", "items": {"type": "string", "format": "binary"}}
    return {
        "required": True,
        "content": {
            **{media: _BINARY for media in ("application/x-tar", "application/gzip", "application/zip")},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"files": files}, "required": ["files"]}
            },
            "application/json": {"schema": folder_request.model_json_schema()},
        },
    }
