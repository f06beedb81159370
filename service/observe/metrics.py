"""What the service exposes to Prometheus (GET /metrics, service/api/metrics.py), with prometheus_client.

Counters and histograms are updated where things happen (requests in RequestMetrics,
job ends in Jobs, deliveries and backend calls in the worker); gauges that describe
state (jobs by kind and status, the disk under AZML_HOME) are read from the job store
and the disk when scraped, so they are never stale and cost nothing between scrapes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:  # only named in annotations: the core imports these counters, not the other way round
    from service.core.store import Job, JobStore


REQUEST_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5, 10)
JOB_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)
DISK_CACHE_SECONDS = 60.0
BACKEND_OPERATIONS = (
    "upload_data",
    "upload_staged",
    "current_data",
    "list_data",
    "ensure_compute",
    "submit_run",
    "find_runs",
    "list_runs",
    "get_run",
    "get_metrics",
    "get_log",
    "read_log",
    "cancel_run",
    "list_run_outputs",
    "register_model",
    "list_models",
    "list_model_versions",
    "download_model",
    "resolve_version",
    "fetch_model",
)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other is labelled "other"


class StateCollector(Collector):
    """Jobs by kind and status, runs queued and running, and bytes under AZML_HOME, read at scrape time."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.store: JobStore | None = None  # set once the service has started
        self._disk: tuple[float, int] = (0.0, 0)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("aml_jobs", "Jobs in the store by kind and status", labels=["kind", "status"])
        runs = GaugeMetricFamily("aml_runs", "Runs waiting for or holding compute", labels=["state"])
        counts = self.store.counts() if self.store is not None else {}
        for (kind, status), count in sorted(counts.items()):
            jobs.add_metric([kind, status], count)
        runs.add_metric(["queued"], counts.get(("run", "Queued"), 0))
        running = sum(counts.get(("run", s), 0) for s in ("Preparing", "Running", "Finalizing"))
        runs.add_metric(["running"], running)
        disk = GaugeMetricFamily("aml_home_bytes", "Bytes of files under AZML_HOME (recounted at most once a minute)")
        disk.add_metric([], self._disk_bytes())
        yield from (jobs, runs, disk)

    def _disk_bytes(self) -> int:
        counted_at, total = self._disk
        if time.monotonic() - counted_at > DISK_CACHE_SECONDS:
            total = 0
            for dirpath, _, filenames in os.walk(self.home):
                for name in filenames:
                    try:
                        total += os.lstat(os.path.join(dirpath, name)).st_size
                    except OSError:
                        continue  # removed while we counted
            self._disk = (time.monotonic(), total)
        return total


class ServiceMetrics:
    """The service's metrics, in a registry of its own (so two apps in one process never collide)."""

    def __init__(self, home: Path) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Histogram(  # its _count is the number of requests: one update per request, not two
            "aml_http_request_duration_seconds",
            "HTTP requests answered and the time each took, by route template, method and status",
            ["route", "method", "status"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.job_seconds = Histogram(
            "aml_job_duration_seconds",
            "Accepted to ended, by job kind and how it ended",
            ["kind", "outcome"],
            buckets=JOB_BUCKETS,
            registry=registry,
        )
        self.upload_bytes = Counter("aml_upload_bytes", "Bytes of data uploads that completed", registry=registry)
        self.upload_files = Counter("aml_upload_files", "Files of data uploads that completed", registry=registry)
        self.deliveries = Counter(
            "aml_notifications",
            "Callbacks and chat notices by channel and outcome",
            ["channel", "outcome"],
            registry=registry,
        )
        self.backend_seconds = Histogram(
            "aml_backend_call_duration_seconds",
            "Backend calls by operation",
            ["operation"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.backend_errors = Counter(
            "aml_backend_call_errors", "Backend calls that raised, by operation", ["operation"], registry=registry
        )
        self.retention_removed = Counter(
            "aml_retention_removed",
            "What the retention sweep removed: job, run_folder, staging, data_version (Azure upload prefixes)",
            ["what"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "aml_auth_failures",
            "Wrong credentials by kind: bearer (an Authorization header), cookie (a session), login (the sign-in form)",
            ["kind"],
            registry=registry,
        )
        for kind in ("bearer", "cookie", "login"):
            self.auth_failures.labels(kind)  # at 0 from the start, so increase() sees the first failure
        self.auth_throttled = Counter(
            "aml_auth_throttled", "Requests answered 429 because their client failed too often", registry=registry
        )
        self.event_streams = Counter(
            "aml_event_streams",
            "GET /events streams opened (long-lived: not in the request latencies)",
            registry=registry,
        )
        self.state = StateCollector(home)
        registry.register(self.state)
        self._start_at_zero()

    def _start_at_zero(self) -> None:
        """Every known label set exists from the start at 0, so increase() sees the first failure after a restart."""
        for kind in ("run", "data", "fetch"):
            for outcome in ("Completed", "Failed", "Canceled"):
                self.job_seconds.labels(kind, outcome)
        for channel in ("callback", "slack", "teams", "mattermost"):
            for outcome in ("delivered", "failed", "refused"):
                self.deliveries.labels(channel, outcome)
        for operation in BACKEND_OPERATIONS:
            self.backend_errors.labels(operation)
        for what in ("job", "run_folder", "staging", "data_version"):
            self.retention_removed.labels(what)

    def job_ended(self, job: Job) -> None:
        if job.finished_at is not None:
            self.job_seconds.labels(job.kind, job.status).observe(max(0.0, job.finished_at - job.created_at))
        if job.kind == "data" and job.status == "Completed":
            self.upload_bytes.inc(job.result.get("bytes") or 0)
            self.upload_files.inc(job.result.get("files") or 0)

    def delivered(self, channel: str, outcome: str) -> None:
        self.deliveries.labels(channel, outcome.split(" ", 1)[0].rstrip(":")).inc()


class RequestMetrics:
    """Counts every answer by route template (never the raw path: ids would explode the labels) and times it."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics
        self._children: dict[tuple[str, str, int], Any] = {}

    def _observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Labelled children are looked up once per (route, method, status): labels() is the costly part."""
        child = self._children.get((route, method, status))
        if child is None:
            child = self._children[route, method, status] = self.metrics.requests.labels(route, method, str(status))
        child.observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        if scope["path"] == "/events":  # a stream lasts as long as its client: counted, not timed
            self.metrics.event_streams.inc()
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, noting)
        finally:
            route = getattr(scope.get("route"), "path", None) or route_template(scope)
            method = scope["method"] if scope["method"] in METHODS else "other"  # h11 passes any token through
            self._observe(route, method, status[0], time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The template of the route a request would have reached (for answers given before routing: 401, 403, 429)."""
    app = scope.get("app")
    for route in getattr(getattr(app, "router", None), "routes", ()):
        match, _ = route.matches(scope)
        if match != Match.NONE and getattr(route, "path", None):
            return route.path
    return "unmatched"
