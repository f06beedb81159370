"""Access control for every route alike, as ASGI middleware: bearer tokens for programs, a cookie for browsers.

AZML_API_TOKENS give full access; AZML_API_READ_TOKENS only GET/HEAD. A browser that
logged in on /ui/login carries a signed session cookie standing for one such token
(service/http/session.py); a write made with the cookie must carry the session's CSRF
token too. A write whose Origin is another site is refused whatever it carries,
sign-in included (login CSRF). With no token configured the service answers loopback
clients only. Tokens are compared in constant time and never logged; a client that keeps
sending wrong ones is slowed down (service/http/throttle.py: 429 with Retry-After).
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import math
from collections.abc import Callable
from urllib.parse import quote, urlsplit

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from amllib.settings import Settings
from service.errors import RETRY_AFTER_SECONDS, StoreUnavailable, send_error
from service.http.session import COOKIE, CSRF_HEADER, SessionSigner
from service.http.throttle import Throttle

log = logging.getLogger("service")
OPEN_PATHS = frozenset({"/", "/healthz", "/ui/login", "/ui/logout", "/favicon.ico"})
CHAT_PREFIX = "/chatops/"  # chat platforms sign their requests their own way (and send no Origin)
OPEN_PREFIXES = ("/ui/static/", CHAT_PREFIX)
READ_METHODS = frozenset({"GET", "HEAD"})


@functools.lru_cache(maxsize=1024)
def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _matching(token: bytes, candidates: tuple[tuple[bytes, str], ...]) -> str | None:
    """The name of the candidate token matches; every one is compared, so timing tells nothing."""
    found = None
    for candidate, name in candidates:
        if hmac.compare_digest(token, candidate):
            found = name
    return found


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else ""


def _has_credentials(headers: dict[bytes, bytes]) -> bool:
    return b"authorization" in headers or COOKIE.encode() in headers.get(b"cookie", b"")


def _credential(headers: dict[bytes, bytes]) -> bytes:
    """What the request signs in with: its bearer token, else its session cookie."""
    if b"authorization" in headers:
        return headers[b"authorization"].partition(b" ")[2].strip() or headers[b"authorization"]
    return cookie_parser(headers.get(b"cookie", b"").decode("latin-1")).get(COOKIE, "").encode()


def _is_page(scope: Scope) -> bool:
    return scope["method"] in READ_METHODS and (scope["path"] == "/" or scope["path"].startswith("/ui"))


class BearerAuth:
    """Answers 401 (no or wrong credentials), 403 (a read identity writing, a foreign origin, no CSRF token)."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        signer: SessionSigner,
        throttle: Throttle | None = None,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.throttle = throttle or Throttle()
        self.on_failure = on_failure  # told the kind of each failed credential (metrics)
        self.full = tuple((t.encode(), n) for t, n in sorted(settings.named_tokens.items()))
        self.read = tuple((t.encode(), n) for t, n in sorted(settings.named_read_tokens.items()))
        self.signer = signer
        self.cors_origins = frozenset(settings.cors_origin_list)
        if not self.full and not self.read:
            log.warning("no AZML_API_TOKENS set: answering loopback clients (127.0.0.1, ::1) only")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        if path.startswith(CHAT_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        problem = self._foreign_origin(scope, headers)
        if problem is None and (path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)):
            await self.app(scope, receive, send)
            return
        credential = _credential(headers) if problem is None and _has_credentials(headers) else None
        wait = self.throttle.wait(_client(scope), credential) if credential is not None else 0.0
        if wait:
            detail = "too many wrong tokens or sessions from this address; wait and try again"
            retry = [(b"retry-after", str(math.ceil(wait)).encode())]
            await send_error(send, 429, "throttled", detail, headers=retry)
            return
        try:
            problem = problem or self._check(scope, headers)
        except StoreUnavailable as exc:  # a session's revocations could not be read: refuse, for now
            retry = [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())]
            await send_error(send, 503, "store_unavailable", str(exc), headers=retry)
            return
        if problem is None:
            if credential:
                self.throttle.succeeded(_client(scope), credential)
            await self.app(scope, receive, send)
            return
        status, kind, detail = problem
        if status == 401 and _has_credentials(headers):
            self.throttle.failed(_client(scope))
            if self.on_failure is not None:
                self.on_failure("cookie" if b"authorization" not in headers else "bearer")
        if status == 401 and _is_page(scope):  # a browser without a session: to the login form
            target = quote(path + ("?" + scope["query_string"].decode("latin-1") if scope["query_string"] else ""))
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [(b"location", b"/ui/login?next=" + target.encode())],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await send_error(
            send, status, kind, detail, headers=[(b"www-authenticate", b"Bearer")] if status == 401 else []
        )

    def _foreign_origin(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str, str] | None:
        """A browser's write from another site (CSRF), told by its Origin header; curl sends none."""
        origin = headers.get(b"origin", b"").decode("latin-1")
        if scope["method"] in READ_METHODS or not origin or origin in self.cors_origins:
            return None
        if urlsplit(origin).netloc.lower() == headers.get(b"host", b"").decode("latin-1").lower():
            return None
        return 403, "forbidden", "a write from another site's page is refused (Origin does not match)"

    def _check(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str, str] | None:
        state = scope.setdefault("state", {})
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        if (scheme or token) and (scheme.lower() != b"bearer" or not token.strip()):
            return 401, "unauthorized", "a malformed Authorization header (expected: Authorization: Bearer <token>)"
        if not self.full and not self.read:
            client = scope.get("client")
            if _is_loopback(client[0] if client else None):
                state["role"], state["caller"] = "full", "loopback"
                return None
            return (
                403,
                "forbidden",
                (
                    "no API tokens are configured, so only loopback clients are answered: set AZML_API_TOKENS "
                    "(name:token,...) to answer others (a container's host, a proxy's clients)"
                ),
            )
        if scheme or token:
            return self._check_bearer(scope, scheme, token.strip())
        session = self.signer.check(cookie_parser(headers.get(b"cookie", b"").decode("latin-1")).get(COOKIE, ""))
        if session is None:
            return 401, "unauthorized", "missing bearer token (Authorization: Bearer <token>) or session"
        state["role"], state["csrf"], state["caller"] = session.role, self.signer.csrf(session), session.name
        state["session"] = session.session_id
        if scope["method"] in READ_METHODS:
            return None
        if not session.may_write:
            return 403, "forbidden", "this session may only read; writes need a full-access token"
        if not hmac.compare_digest(headers.get(CSRF_HEADER.encode(), b""), state["csrf"].encode()):
            return 403, "forbidden", "a write with the session cookie needs the page's X-CSRF-Token"
        return None

    def _check_bearer(self, scope: Scope, scheme: bytes, raw: bytes) -> tuple[int, str, str] | None:
        if scheme.lower() != b"bearer" or not raw:
            return 401, "unauthorized", "missing bearer token (Authorization: Bearer <token>)"
        state = scope["state"]
        name = _matching(raw, self.full)
        if name is not None:
            state["role"], state["caller"] = "full", name
            return None
        name = _matching(raw, self.read)
        if name is not None:
            if scope["method"] in READ_METHODS:
                state["role"], state["caller"] = "read", name
                return None
            return 403, "forbidden", "this token may only read (GET); writes need a full-access token"
        return 401, "unauthorized", "invalid bearer token"
