"""ASGI middleware at the service's edge: bounded request bodies and HEAD for every GET.

Upload bodies (POST /data with an archive or multipart type) stream past untouched:
service/http/uploads.py bounds them itself. Every other body is read here, at most
MAX_BODY bytes and never stalling longer than AZML_BODY_TIMEOUT between chunks,
before any route sees it; so no route can be made to hold a huge or endless body.

The NUL character is refused here too, in the path (404), a query parameter or a JSON or
form field (422): no name or id holds one, and PostgreSQL takes none in text or jsonb.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import send_error

MAX_BODY = 64 * 1024
MAX_JSON_DEPTH = 32
NUL = "\x00"


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


def _streamed_upload(scope: Scope) -> bool:
    """POST /data bodies other than JSON: the route streams (or, for a type it refuses, never reads) them."""
    media = _header(scope, b"content-type").split(";")[0].strip().lower()
    return scope["path"] == "/data" and media != "application/json"


def _nul_field(value: object, where: str = "") -> str | None:
    """The place (a.b.0) of the first key or string in a JSON value holding a NUL character."""
    if isinstance(value, str):
        return where or "body" if NUL in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        place = f"{where}.{key}" if where else str(key)
        if isinstance(key, str) and NUL in key:
            return place
        found = _nul_field(child, place)
        if found:
            return found
    return None


def _shown(name: str) -> str:
    """A caller's field name in an error: NUL written as \\0, cut short."""
    return name.replace(NUL, "\\0")[:60]


def _nul_in_form(text: str) -> str | None:
    for name, value in parse_qsl(text, keep_blank_values=True):
        if NUL in name or NUL in value:
            return name
    return None


async def refuse_nul_in_url(scope: Scope, send: Send) -> bool:
    """Answer a path (404) or query (422) holding a NUL character; whether it was answered."""
    if NUL in scope["path"]:
        await send_error(send, 404, "not_found", "no such path: it holds a NUL character")
        return True
    query = scope.get("query_string", b"")
    if query and (b"%00" in query or b"\x00" in query):
        name = _nul_in_form(query.decode("latin-1"))
        if name is not None:
            await send_error(send, 422, "invalid", f"query parameter {_shown(name)!r} holds a NUL character")
            return True
    return False


def _depth(value: object, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return max((_depth(child, level + 1) for child in children), default=level)


class BodyLimit:
    """Reads every non-upload body whole, bounded in size and time, then replays it to the app."""

    def __init__(self, app: ASGIApp, *, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and await refuse_nul_in_url(scope, send):
            return
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS") or _streamed_upload(scope):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY:
            await send_error(send, 413, "too_large", f"a request body is limited to {MAX_BODY} bytes here")
            return
        body = bytearray()
        more = True
        while more:
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except TimeoutError:
                detail = f"no part of the body arrived for {self.timeout:g} s (AZML_BODY_TIMEOUT)"
                await send_error(send, 408, "body_timeout", detail)
                return
            if message["type"] == "http.disconnect":
                return  # the client has gone; nobody to answer
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY:
                await send_error(send, 413, "too_large", f"a request body is limited to {MAX_BODY} bytes here")
                return
        problem = self._json_problem(scope, bytes(body))
        if problem:
            await send_error(send, 422, "invalid", problem)
            return
        await self.app(scope, _replay(bytes(body), receive), send)

    @staticmethod
    def _json_problem(scope: Scope, body: bytes) -> str | None:
        """A JSON body that is not UTF-8 (RFC 8259), nested deeper than the parser or validator can take, or
        holding a NUL character; a form body holding one.

        Refused here, before any route sees it, so no JSON route can meet bytes its parser chokes on.
        """
        media = _header(scope, b"content-type").lower()
        if body and media.startswith("application/x-www-form-urlencoded") and (b"%00" in body or b"\x00" in body):
            name = _nul_in_form(body.decode("latin-1"))
            if name is not None:
                return f"form field {_shown(name)!r} holds a NUL character"
        if not body or "json" not in media:
            return None
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"the JSON body is not UTF-8 text (byte {exc.start} is not valid UTF-8)"
        try:
            value = json.loads(text)
        except RecursionError:
            return f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
        except ValueError:
            return None  # not JSON: the route's own validation says so, naming the problem
        if _depth(value) > MAX_JSON_DEPTH:
            return f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
        place = _nul_field(value)
        if place is not None:
            return f"{_shown(place)}: holds a NUL character"
        return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class HeadAsGet:
    """HEAD answered as GET without its body, for every GET route (FastAPI's routes take GET only)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


# The dashboard's pages load only the service's own script and style, draw SVG, and talk to the API.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI (served from the service, see service/http/docs.py) sets inline styles on its elements.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
API_POLICY = "default-src 'none'; frame-ancestors 'none'"  # JSON and text: nothing to run, nothing to frame


def _policy(path: str) -> bytes:
    if path == "/docs" or path.startswith("/docs/"):
        return DOCS_POLICY.encode()
    if path == "/" or path.startswith("/ui"):
        return PAGE_POLICY.encode()
    return API_POLICY.encode()


class SecurityHeaders:
    """Every answer says: don't sniff its type, don't frame it, send no referrer, and run only the service's code."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),  # no-referrer would make the browser send Origin: null on forms
            (b"content-security-policy", _policy(scope["path"])),
        ]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)
