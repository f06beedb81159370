"""Answering only to known host names, so a page on another site can't reach the service by DNS rebinding.

A browser that visits attacker.example, whose name is then rebound to 127.0.0.1, sends
`Host: attacker.example` to this service; with no tokens configured the service trusts
loopback clients, so without this check such a page could start runs and read them.
Like Django's ALLOWED_HOSTS and Starlette's TrustedHostMiddleware: AZML_ALLOWED_HOSTS
names the hosts (`*.example.com` for subdomains, `*` for any); unset, it is the loopback
names while no tokens are configured (the only clients then are this machine's), and any
host once tokens are (credentials, not the Host, guard the service then). The loopback names
(a health check on the machine itself) and AZML_PUBLIC_URL's host are always allowed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from amllib.settings import Settings
from service.errors import send_error

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def host_name(header: str) -> str:
    """The host part of a Host header, lower-case, without port or IPv6 brackets ('' if unreadable)."""
    try:
        return (urlsplit("//" + header).hostname or "").lower()
    except ValueError:
        return ""


def allowed_hosts(settings: Settings) -> frozenset[str]:
    configured = settings.allowed_host_set
    if not configured:
        configured = frozenset({"*"}) if settings.token_set or settings.read_token_set else LOOPBACK_NAMES
    public = host_name(urlsplit(settings.public_url).netloc) if settings.public_url else ""
    return configured | LOOPBACK_NAMES | ({public} if public else set())


def host_allowed(host: str, allowed: frozenset[str]) -> bool:
    if "*" in allowed:
        return True
    if not host:
        return False
    return host in allowed or any(p.startswith("*.") and host.endswith(p[1:]) for p in allowed)


class TrustedHosts:
    """400 for a request whose Host is not one the service answers to."""

    def __init__(self, app: ASGIApp, *, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "*" in self.allowed:
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        if host_allowed(host_name(header), self.allowed):
            await self.app(scope, receive, send)
            return
        detail = (
            f"this service does not answer to the host name {header[:80]!r}; "
            "add it to AZML_ALLOWED_HOSTS (comma-separated) if it is yours"
        )
        await send_error(send, 400, "invalid_host", detail)
