"""End-of-job deliveries: the job JSON to its callback_url, and (through the same poster) chat notices.

Every delivery goes through post_with_retry: one POST with a short timeout, no redirects
followed, retried with backoff, answered with an outcome the job records. Hosts are checked
before anything is sent, all here: callback URLs against AZML_CALLBACK_HOSTS, chat notices and
command replies against their platform's own hosts (or AZML_CALLBACK_HOSTS), so the service cannot
be made to reach arbitrary internal addresses. With AZML_WEBHOOK_SECRET set, a callback body is signed:
X-Signature: sha256=<hex HMAC>. Tests give `transport` an httpx.MockTransport.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from urllib.parse import urlsplit

import httpx

from amllib.errors import InvalidInput, quoted
from amllib.settings import Settings

log = logging.getLogger("service")
ATTEMPTS = 6
SLACK_HOSTS = frozenset({"hooks.slack.com"})  # Slack's incoming webhooks


def check_callback_url(url: str | None, allowed_hosts: frozenset[str]) -> str | None:
    """The URL if it is http(s) to an allowed host, else InvalidInput naming why."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError as exc:
        raise InvalidInput(f"callback_url is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput("callback_url must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise InvalidInput("callback_url must not carry credentials")
    if host not in allowed_hosts and f"{host}:{port}" not in allowed_hosts:
        raise InvalidInput(f"callback_url host {quoted(host)} is not in AZML_CALLBACK_HOSTS")
    return url


def host_of(url: str | None) -> str:
    """The URL's host, lower case; empty for one that carries credentials or does not parse."""
    try:
        parts = urlsplit(url or "")
        return "" if parts.username or parts.password else (parts.hostname or "").lower()
    except ValueError:
        return ""


def notice_url_allowed(settings: Settings, url: str | None, *, platform: str) -> bool:
    """Whether a chat notice may go to url: https to the platform's own hosts, or to an AZML_CALLBACK_HOSTS host."""
    try:
        parts = urlsplit(url or "")
        port = parts.port
    except ValueError:
        return False
    host = host_of(url)
    if not host or parts.scheme not in ("http", "https"):
        return False
    callbacks = settings.callback_host_set
    if host in callbacks or f"{host}:{port}" in callbacks:
        return True
    platform_hosts = {
        "slack": SLACK_HOSTS | {host_of(settings.slack_webhook_url)},
        "teams": {host_of(settings.teams_webhook_url)},
        "mattermost": set(),
    }[platform] - {""}
    return parts.scheme == "https" and host in platform_hosts


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def post_with_retry(
    url: str,
    *,
    content: bytes,
    headers: dict[str, str],
    attempts: int = ATTEMPTS,
    base_delay: float = 0.5,
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[bool, str]:
    """POST until a 2xx or `attempts` tries (waiting base_delay × 2^n, at most 30 s, between them, none
    after the last); (delivered, what happened: the status and attempt, or the last failure)."""
    last = "not attempted"
    async with httpx.AsyncClient(timeout=10, follow_redirects=False, transport=transport) as client:
        for attempt in range(attempts):
            try:
                response = await client.post(url, content=content, headers=headers)
                if 200 <= response.status_code < 300:
                    return True, f"HTTP {response.status_code}, attempt {attempt + 1}"
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            if attempt < attempts - 1:
                await asyncio.sleep(min(30.0, base_delay * 2**attempt))
    return False, last


async def deliver(
    url: str,
    body: bytes,
    *,
    job_id: str,
    secret: str | None,
    base_delay: float = 0.5,
    transport: httpx.AsyncBaseTransport | None = None,
) -> str:
    """POST the job's JSON to its callback_url; the outcome to record on the job."""
    headers = {"content-type": "application/json", "x-job-id": job_id}
    if secret:
        headers["x-signature"] = signature(secret, body)
    delivered, what = await post_with_retry(
        url, content=body, headers=headers, base_delay=base_delay, transport=transport
    )
    if delivered:
        return f"delivered ({what})"
    log.warning("callback for job %s failed after %d attempts: %s", job_id, ATTEMPTS, what)
    return f"failed after {ATTEMPTS} attempts: {what}"
