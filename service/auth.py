"""Bearer-token access control, as ASGI middleware so it guards every route alike.

AZML_API_TOKENS give full access; AZML_API_READ_TOKENS only GET/HEAD. With no token
configured the service answers loopback clients only. Tokens are compared in
constant time and never logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from amllib.settings import Settings
from service.errors import send_error

log = logging.getLogger("service")
OPEN_PATHS = frozenset({"/healthz"})
READ_METHODS = frozenset({"GET", "HEAD"})


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _matches(token: bytes, candidates: tuple[bytes, ...]) -> bool:
    """Compare against every candidate, so timing does not tell which (or whether one) matched."""
    found = False
    for candidate in candidates:
        found |= hmac.compare_digest(token, candidate)
    return found


class BearerAuth:
    """Answers 401 (no or wrong token), 403 (read token on a write, or non-loopback without tokens)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.full = tuple(t.encode() for t in sorted(settings.token_set))
        self.read = tuple(t.encode() for t in sorted(settings.read_token_set))
        if not self.full and not self.read:
            log.warning("no AZML_API_TOKENS set: answering loopback clients (127.0.0.1, ::1) only")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        problem = self._check(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, kind, detail = problem
        headers = [(b"www-authenticate", b"Bearer")] if status == 401 else []
        await send_error(send, status, kind, detail, headers=headers)

    def _check(self, scope: Scope) -> tuple[int, str, str] | None:
        if not self.full and not self.read:
            client = scope.get("client")
            if _is_loopback(client[0] if client else None):
                return None
            return 403, "forbidden", "no API tokens are configured, so only loopback clients are answered"
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return 401, "unauthorized", "missing bearer token (Authorization: Bearer <token>)"
        token = token.strip()
        if _matches(token, self.full):
            return None
        if _matches(token, self.read):
            if scope["method"] in READ_METHODS:
                return None
            return 403, "forbidden", "this token may only read (GET); writes need a full-access token"
        return 401, "unauthorized", "invalid bearer token"
