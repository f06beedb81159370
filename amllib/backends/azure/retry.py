"""Retrying Azure calls that failed for a passing reason (throttling, 5xx, dropped connections)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from amllib.backends.azure.auth import scrub
from amllib.errors import BackendUnavailable

T = TypeVar("T")
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an SDK exception carries, wherever this SDK keeps it."""
    for holder in (exc, getattr(exc, "response", None), getattr(exc, "inner_exception", None)):
        for name in ("status_code", "status"):
            value = getattr(holder, name, None)
            if isinstance(value, int):
                return value
    return None


def retry_after(exc: BaseException) -> float | None:
    """The seconds a 429 or 503 answer asked the caller to wait (its Retry-After header), if it said."""
    for holder in (getattr(exc, "response", None), getattr(getattr(exc, "inner_exception", None), "response", None)):
        headers = getattr(holder, "headers", None) or {}
        value = headers.get("Retry-After") or headers.get("retry-after") if hasattr(headers, "get") else None
        if value is not None and str(value).strip().isdigit():
            return float(str(value).strip())
    return None


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    import requests
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    if isinstance(exc, ServiceRequestError | ServiceResponseError):  # the blob client could not connect
        return True
    return status_of(exc) in TRANSIENT_STATUS


def with_retry(
    what: str,
    call: Callable[[], T],
    *,
    attempts: int = 5,
    base_delay: float = 1.0,
    sleep: Callable[[float], Any] | None = None,
) -> T:
    """call(), retried with exponential backoff while it fails transiently; then BackendUnavailable."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt == attempts - 1:
                raise BackendUnavailable(
                    f"{what} failed {attempts} times; last error: {scrub(str(exc)) or type(exc).__name__}"
                ) from exc
            backoff = min(30.0, base_delay * 2**attempt)
            asked = retry_after(exc)  # the service said how long; honour it (within reason)
            (sleep or time.sleep)(backoff if asked is None else min(60.0, max(backoff, asked)))
    raise AssertionError("unreachable")
