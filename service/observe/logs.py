"""The service's log lines: every line carries its context (request id, job id, run id, caller), as text or JSON.

The context lives in context variables, so a line logged anywhere under a request, or
under a job's task in the worker, is tagged without passing ids around. RequestLog is
the outermost middleware: it picks the request id (the caller's X-Request-ID when it is
sane, else a new one), returns it on every response, and writes one access line per
request. Query values named like secrets and bearer tokens are masked in every line.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECRET_QUERY = re.compile(
    r"(?i)([?&][^=&\s]*(?:token|secret|key|sig|signature|password|passwd|pwd|auth|code|jwt|session|cookie)"
    r"[^=&\s]*=)[^&\s\"']*"
)
_BEARER = re.compile(r"(?i)(bearer(?:\s|%20|\+)+)[^\s\"',&]+")
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")
CONTEXT_FIELDS = ("request_id", "job_id", "run_id", "caller")

_request: ContextVar[tuple[str, dict[str, Any]] | None] = ContextVar("azml_request", default=None)
_job: ContextVar[str | None] = ContextVar("azml_job", default=None)
_run: ContextVar[str | None] = ContextVar("azml_run", default=None)
_caller: ContextVar[str | None] = ContextVar("azml_caller", default=None)


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """text with control characters escaped (\\n, \\x1b…), so a value from a request can't forge a log line."""
    if text.isprintable():
        return text
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def redact(text: str) -> str:
    """text with secret-looking query values and bearer tokens replaced."""
    if "=" in text:
        text = SECRET_QUERY.sub(r"\1[redacted]", text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(r"\1[redacted]", text)
    return text


def bind_job(job_id: str, *, caller: str | None = None, run_id: str | None = None) -> None:
    """Tag the lines logged from here on in this task (a worker's job, a request's new job)."""
    _job.set(job_id)
    if caller:
        _caller.set(caller)
    if run_id:
        _run.set(run_id)


def bind_run(run_id: str | None) -> None:
    if run_id:
        _run.set(run_id)


def current_request_id() -> str | None:
    request = _request.get()
    return request[0] if request else None


_ID_PREFIX = uuid.uuid4().hex[:16]  # new at every start, so ids stay unique across restarts
_id_counter = itertools.count(1)


def request_id_for(header: str | None) -> str:
    """The caller's own X-Request-ID when it is short and plain, otherwise a new one.

    New ids are this process's random prefix and a counter (32 hex digits, like a UUID
    without dashes): unique, and a tenth of the cost of uuid4 on the hot path.
    """
    if header and _SANE_ID.fullmatch(header):
        return header
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


class ContextFilter(logging.Filter):
    """Copies the current context onto each record (None where there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = _request.get()
        record.request_id = request[0] if request else None
        record.job_id = _job.get()
        record.run_id = _run.get()
        record.caller = _caller.get() or (request[1].get("caller") if request else None)
        return True


class TextFormatter(logging.Formatter):
    """`INFO:     service: message [request=… job=… caller=…]`, readable beside uvicorn's lines.

    One record is one line: control characters in the message and context are escaped (a name or
    path from a request can't start a forged line); only a traceback spans lines.
    """

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname}:     {record.name}: {printable(redact(record.getMessage()))}"
        context = " ".join(
            f"{key.removesuffix('_id')}={printable(str(value))}"
            for key in CONTEXT_FIELDS
            if (value := getattr(record, key, None))
        )
        line = f"{line} [{context}]" if context else line
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the context fields that are set."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        entry: dict[str, Any] = {
            "time": stamp,
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(log_format: str) -> None:
    """One handler for the service's lines; uvicorn's own lines get the same format in JSON mode.

    The service writes the access lines itself (with the request id and caller) and uvicorn's
    own access logger is silenced, so each request has exactly one line whichever way uvicorn
    was started, and none with AZML_ACCESS_LOG=false.
    """
    formatter: logging.Formatter = JsonFormatter() if log_format == "json" else TextFormatter()
    service_log = logging.getLogger("service")
    handler = next((h for h in service_log.handlers if getattr(h, "azml", False)), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler.azml = True  # type: ignore[attr-defined]
        handler.addFilter(ContextFilter())
        service_log.addHandler(handler)
        service_log.setLevel(logging.INFO)
        service_log.propagate = False
    handler.setFormatter(formatter)
    if log_format == "json":
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            for uvicorn_handler in logging.getLogger(name).handlers:
                uvicorn_handler.setFormatter(formatter)
                if not any(isinstance(f, ContextFilter) for f in uvicorn_handler.filters):
                    uvicorn_handler.addFilter(ContextFilter())
    logging.getLogger("uvicorn.access").disabled = True  # the access line is ours (AccessLog), or nobody's


class AccessLog:
    """The access lines, in the service's format, written in batches from the event loop.

    Going through `logging` cost GET /runs/{id} a fifth of its throughput (bench.feature_cost):
    a record, a filter, a formatter and a flushed write per request. Here a line is one string
    appended to a list, and the list is written to the service's log stream at most every
    FLUSH_SECONDS (and at shutdown), so lines reach the log within that time of their request.
    """

    FLUSH_SECONDS = 0.2

    def __init__(self, log_format: str) -> None:
        self.json = log_format == "json"
        self.pending: list[str] = []
        self._scheduled = False

    def add(self, scope: Scope, status: int, seconds: float, request_id: str, state: dict[str, Any]) -> None:
        path = scope["path"]
        if scope["query_string"]:
            path = redact(path + "?" + scope["query_string"].decode("latin-1"))
        method = scope["method"]
        if not self.json:  # JSON escapes by itself; a text line must stay one line whatever the URL holds
            path, method = printable(path), printable(method)
        millis, caller = round(seconds * 1000, 1), state.get("caller")
        if self.json:
            entry = {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": "INFO",
                "logger": "service.access",
                "message": f"{method} {path} {status} {millis} ms",
                "request_id": request_id,
                **({"caller": caller} if caller else {}),
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": millis,
            }
            self.pending.append(json.dumps(entry, ensure_ascii=False) + "\n")
        else:
            who = f" caller={printable(caller)}" if caller else ""
            line = f"INFO:     service.access: {method} {path} {status} {millis} ms [request={request_id}{who}]\n"
            self.pending.append(line)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(self.FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        lines, self.pending = self.pending, []
        if lines:
            stream = _service_stream()
            with contextlib.suppress(OSError, ValueError):  # a closed or full log must not fail requests
                stream.write("".join(lines))
                stream.flush()


def _service_stream() -> Any:
    handler = next((h for h in logging.getLogger("service").handlers if getattr(h, "azml", False)), None)
    return handler.stream if isinstance(handler, logging.StreamHandler) else sys.stderr


class RequestLog:
    """Outermost middleware: request id in, X-Request-ID out, one access line per request."""

    def __init__(self, app: ASGIApp, *, access: AccessLog | None) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = request_id_for(header)
        state = scope.setdefault("state", {})
        _request.set((request_id, state))  # each request runs in its own task: nothing leaks to the next
        id_header = (b"x-request-id", request_id.encode())
        status = 0
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access is not None:
                self.access.add(scope, status or 500, time.perf_counter() - started, request_id, state)
