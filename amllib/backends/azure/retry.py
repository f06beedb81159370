"""Retrying Azure calls that failed for a passing reason (throttling, 5xx, dropped connections, timeouts).

Which layer retries what (one layer per call, never two stacked):

- azureml-v2 (azure-ai-ml, azure-storage-blob, MLflow): **this module**. Every client the backend
  builds has its own retries switched off (the MLClient and the storage clients with
  `retry_total=0`, MLflow's HTTP client with MLFLOW_HTTP_REQUEST_MAX_RETRIES=0), so one SDK call
  sends one request a try, and `with_retry` tries it again at most ATTEMPTS times within the
  call's budget (AZML_AZURE_RETRY_SECONDS), waiting what a 429/503 answer's Retry-After asks, or an
  exponential back-off. A wait past the budget is not waited: the call ends at once with
  BackendUnavailable, saying what Azure asked. Measured through the real MLClient (replay): a job
  that answers 429 for ever costs ATTEMPTS requests, not azure-core's 10 × ours.
- azureml (SDK v1, azureml-core): **azureml-core**. Its REST clients (`_restclient.ClientBase`) and
  its datastore's blob service retry inside every call and are not configurable from here, so the
  v1 backend calls `with_retry` with one attempt: it only maps the failure.
- Timeouts (both): a connection that can't be made in AZML_AZURE_CONNECT_TIMEOUT seconds, or an
  answer that stalls for AZML_AZURE_READ_TIMEOUT, fails the try (azure-core would wait 300 s).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from amllib.backends.azure.auth import scrub
from amllib.errors import BackendUnavailable

T = TypeVar("T")
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
ATTEMPTS = 4
MAX_BACKOFF = 30.0


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an SDK exception carries, wherever this SDK keeps it."""
    for holder in (exc, getattr(exc, "response", None), getattr(exc, "inner_exception", None)):
        for name in ("status_code", "status"):
            value = getattr(holder, name, None)
            if isinstance(value, int):
                return value
    if callable(getattr(exc, "get_http_status_code", None)):  # MLflow's exceptions, from their error code
        value = exc.get_http_status_code()  # type: ignore[attr-defined]
        return value if isinstance(value, int) else None
    return None


def retry_after(exc: BaseException) -> float | None:
    """The seconds a 429 or 503 answer asked the caller to wait (its Retry-After header, in seconds), if it said."""
    seen: BaseException | None = exc
    for _ in range(4):  # the SDKs wrap the HTTP error: look behind them too
        if seen is None:
            break
        for holder in (
            getattr(seen, "response", None),
            getattr(getattr(seen, "inner_exception", None), "response", None),
        ):
            headers: Any = getattr(holder, "headers", None)
            value = (headers.get("Retry-After") or headers.get("retry-after")) if hasattr(headers, "get") else None
            if value is not None and str(value).strip().isdigit():
                return float(str(value).strip())
        seen = seen.__cause__ or seen.__context__
    return None


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    import requests
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    if isinstance(exc, ServiceRequestError | ServiceResponseError):  # no connection, or no (whole) answer in time
        return True
    return status_of(exc) in TRANSIENT_STATUS


def with_retry(
    what: str,
    call: Callable[[], T],
    *,
    attempts: int = ATTEMPTS,
    budget: float = 60.0,
    base_delay: float = 1.0,
    sleep: Callable[[float], Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """call(), tried again while it fails transiently, at most `attempts` times within `budget` seconds
    (waits included); then BackendUnavailable naming the last error."""
    deadline = clock() + budget
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            last = scrub(str(exc)).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            asked = retry_after(exc)
            wait = min(MAX_BACKOFF, base_delay * 2**attempt) if asked is None else asked
            if attempt == attempts - 1:
                times = f" {attempts} times" if attempts > 1 else ""
                raise BackendUnavailable(f"{what} failed{times}; last error: {last}") from exc
            if clock() + wait > deadline:
                said = f"Azure asked to wait {asked:g} s" if asked is not None else f"the next try is in {wait:g} s"
                raise BackendUnavailable(
                    f"{what} failed {attempt + 1} time(s) and {said}, past the {budget:g} s this call may take "
                    f"(AZML_AZURE_RETRY_SECONDS); last error: {last}"
                ) from exc
            (sleep or time.sleep)(wait)  # looked up at call time (tests replace it)
    raise AssertionError("unreachable")
