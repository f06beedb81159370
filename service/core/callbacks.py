"""Telling a caller that its job ended: POST the job JSON to its callback_url.

Only hosts in AZML_CALLBACK_HOSTS are allowed, so the service cannot be used to
reach arbitrary internal addresses; redirects are not followed. With
AZML_WEBHOOK_SECRET set, the body is signed: X-Signature: sha256=<hex HMAC>.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from urllib.parse import urlsplit

import httpx

from amllib.errors import InvalidInput, quoted

log = logging.getLogger("service")
ATTEMPTS = 6


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


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def deliver(url: str, body: bytes, *, job_id: str, secret: str | None, base_delay: float = 0.5) -> str:
    """POST body to url, retrying with backoff; returns the outcome to record on the job."""
    headers = {"content-type": "application/json", "x-job-id": job_id}
    if secret:
        headers["x-signature"] = signature(secret, body)
    last = "not attempted"
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
        for attempt in range(ATTEMPTS):
            try:
                response = await client.post(url, content=body, headers=headers)
                if 200 <= response.status_code < 300:
                    return f"delivered (HTTP {response.status_code}, attempt {attempt + 1})"
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            if attempt < ATTEMPTS - 1:
                await asyncio.sleep(min(30.0, base_delay * 2**attempt))
    log.warning("callback for job %s failed after %d attempts: %s", job_id, ATTEMPTS, last)
    return f"failed after {ATTEMPTS} attempts: {last}"
