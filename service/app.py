"""The FastAPI app: create_app(settings), its lifespan (resume unfinished jobs), middleware and routes.

`uvicorn service.app:app` builds the app from the environment and `.env`.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from amllib.backends import get_backend
from amllib.promotion import Gate, check_alias
from amllib.settings import Settings, dotenv_file, load_settings
from service import deployments as deploying
from service import errors, promotions
from service import schedules as scheduling
from service.actions import Services
from service.api import aliases, catalog, data, deployments, events, models, notifications, runs, schedules
from service.api.metrics import router as metrics_route
from service.background.notifier import Notifier
from service.background.periodic import Leader, every
from service.background.retention import RetentionSweep
from service.background.run_import import RunImporter
from service.chatops import mattermost, slack, teams
from service.chatops.notices import notify_end
from service.core.backend_calls import BackendCalls
from service.core.events import EventFeed
from service.core.jobs import Jobs, replica_id
from service.core.schemas import render
from service.core.stores import open_store
from service.core.subscriptions import subscriptions
from service.core.worker import Worker, backend_threads
from service.http import docs
from service.http.answers import Health
from service.http.auth import BearerAuth
from service.http.hosts import TrustedHosts, allowed_hosts
from service.http.middleware import BodyLimit, HeadAsGet, SecurityHeaders
from service.http.openapi import ok
from service.http.session import SessionSigner
from service.http.throttle import Throttle
from service.observe import logs
from service.observe.metrics import RequestMetrics, ServiceMetrics
from service.ui import routes as ui_routes

log = logging.getLogger("service")
chatops_routers = (slack.router, teams.router, mattermost.router)


def calm_garbage_collector() -> None:
    """Fewer, shorter collection pauses: measured, they were most of POST /runs' p99 under a burst.

    Objects alive after start-up are frozen out of collections, and young objects are collected
    less often (a request allocates many short-lived ones that reference counting frees anyway).
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for these settings (default: read from the environment)."""
    read_here = settings is None
    source = dotenv_file() if read_here else None
    settings = settings or load_settings(_env_file=source)
    logs.configure(settings.log_format)
    if read_here:
        log.info("settings read from the environment%s", f" and {source}" if source else " (no .env file)")
    settings.require_identity()
    settings.check_chatops_writers()
    for alias, gate in settings.alias_gate_map.items():  # every gate named wrong is a start-up error, not a 500 later
        check_alias(alias)
        Gate.parse(gate)
    notify_to = subscriptions(settings)  # AZML_NOTIFY named wrong is a start-up error
    if settings.db_on_postgres and settings.backend == "local":  # also validates AZML_DB_URL at start-up
        log.warning(
            "the job store is PostgreSQL but the backend is local: replicas must run on this one machine and "
            "share AZML_HOME (local training runs where the service runs); across machines use an Azure backend"
        )
    replica = replica_id()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backend = get_backend(settings)
        store = open_store(settings)
        feed = EventFeed(store)
        loop = asyncio.get_running_loop()
        store.on_change(functools.partial(loop.call_soon_threadsafe, feed.changed))  # other replicas' changes
        on_end = metrics.job_ended if metrics else None
        jobs = Jobs(
            store,
            render=lambda job: render(job, backend.name),
            feed=feed,
            on_end=on_end,
            replica=replica,
            lease_seconds=settings.lease_seconds,
        )
        if metrics:
            metrics.state.store = store
        calls = BackendCalls(threads=backend_threads(settings), metrics=metrics)
        worker = Worker(settings=settings, backend=backend, jobs=jobs, metrics=metrics, notify=notify_end, calls=calls)
        app.state.services = Services(
            settings=settings, backend=backend, store=store, jobs=jobs, worker=worker, feed=feed, calls=calls
        )
        signer.attach(store)
        throttle.attach(store)
        resumed = await worker.resume()
        worker.keep_running(worker.keep_leases())

        def leader(task: str) -> Leader | None:
            """One replica at a time runs each singleton task (None: an embedded store has one process)."""
            if not store.shared:
                return None
            take = functools.partial(store.write, lambda tx: tx.lead(task, replica, lease=settings.lease_seconds))
            return Leader(take=take, seconds=settings.lease_seconds)

        if settings.retention_days:
            sweep = RetentionSweep(
                worker=worker,
                days=settings.retention_days,
                interval=settings.retention_sweep_seconds,
                metrics=metrics,
                lead=leader("retention"),
            )
            worker.keep_running(sweep.run_forever())
        if settings.run_import_seconds > 0:
            importer = RunImporter(
                worker=worker, jobs=jobs, interval=settings.run_import_seconds, lead=leader("run_import")
            )
            worker.keep_running(importer.run_forever())
        services = app.state.services
        approvals = functools.partial(promotions.resume_approvals, services)  # a move approved, never made
        worker.keep_running(every(30.0, approvals, what="carrying out approved moves", lead=leader("approvals")))
        # every replica looks for due ticks (one transaction makes each fire once); one follows up on runs
        fire = functools.partial(scheduling.fire_due, services)
        worker.keep_running(every(0.5, fire, what="firing schedules"))
        on_data = functools.partial(scheduling.fire_on_data, services)
        worker.keep_running(every(5.0, on_data, what="watching data for schedules", lead=leader("schedule-data")))
        after = functools.partial(scheduling.follow_up, services)
        worker.keep_running(every(2.0, after, what="following up schedules' runs", lead=leader("schedule-runs")))
        following = functools.partial(deploying.follow_aliases, services)  # endpoints that follow an alias
        worker.keep_running(every(2.0, following, what="following aliases", lead=leader("alias-follower")))
        if settings.backend == "local":  # endpoint processes of this machine: started again when they died
            supervise = functools.partial(services.calls, lambda: worker.endpoints.ensure_running())
            worker.keep_running(every(3.0, supervise, what="keeping endpoints up", lead=leader("endpoints")))
        if notify_to:
            notifier = Notifier(settings=settings, store=store, subscriptions=notify_to, lead=leader("notifier"))
            await notifier.begin()
            worker.keep_running(notifier.run_forever())
        calm_garbage_collector()
        log.info(
            "service up on the %s backend (replica %s, %s job store); resumed %d unfinished jobs",
            backend.name,
            replica,
            "PostgreSQL" if store.shared else "SQLite",
            resumed,
        )
        try:
            yield
        finally:
            await worker.close()
            calls.close()
            feed.close()
            store.close()
            if app.state.access_log is not None:
                app.state.access_log.flush()

    app = FastAPI(
        title="AML control plane",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by service/http/docs.py from the service itself, no CDN
        redoc_url=None,
        description="Upload data, train, register and fetch models on Azure ML or locally.",
    )
    errors.install(app)
    metrics = ServiceMetrics(settings.home) if settings.metrics else None
    app.state.metrics = metrics

    @app.get(
        "/healthz",
        tags=["health"],
        summary="Liveness; needs no token",
        response_model=None,
        responses={200: ok(Health)},
    )
    async def healthz(request: Request) -> dict:
        services = getattr(request.app.state, "services", None)
        streams = services.feed.open_streams if services else 0
        return {"status": "ok", "backend": settings.backend, "event_streams": streams}

    # Routes go flat and ahead of the docs routes, hot path (GET /runs/{id}) first: this FastAPI
    # matches nested routers slowly, and each route tried before the match costs a regex per request.
    routers = (
        runs.router,
        data.router,
        models.router,
        aliases.router,
        notifications.router,
        deployments.router,
        schedules.router,
        catalog.router,
        events.router,
        metrics_route,
        *chatops_routers,
    )
    app.router.routes[0:0] = [route for router in routers for route in router.routes]
    app.mount("/ui/static", StaticFiles(directory=ui_routes.STATIC), name="ui-static")  # before /ui/{page}
    docs.install(app)
    app.router.routes.extend(ui_routes.router.routes)
    signer = SessionSigner(settings.home, full=settings.named_tokens, read=settings.named_read_tokens)
    app.state.signer = signer
    app.state.signer_has_tokens = bool(settings.token_set or settings.read_token_set)
    throttle = Throttle(on_throttled=metrics.auth_throttled.inc if metrics else None)
    app.state.throttle = throttle
    app.state.auth_failed = (lambda kind: metrics.auth_failures.labels(kind).inc()) if metrics else None
    app.add_middleware(BodyLimit, timeout=settings.body_timeout)
    app.add_middleware(HeadAsGet)
    app.add_middleware(
        BearerAuth, settings=settings, signer=signer, throttle=throttle, on_failure=app.state.auth_failed
    )
    if metrics:
        app.add_middleware(RequestMetrics, metrics=metrics)  # outside auth: refusals are counted too
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["Location", "Idempotent-Replayed", "X-Request-ID"],
        )
    access = logs.AccessLog(settings.log_format) if settings.access_log else None
    app.state.access_log = access
    app.add_middleware(SecurityHeaders)
    app.add_middleware(TrustedHosts, allowed=allowed_hosts(settings))
    app.add_middleware(logs.RequestLog, access=access)  # every response gets its id
    proxies = settings.trusted_proxy_list
    if proxies:  # outermost: everything inside sees the client the named proxies forwarded for
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    warn_if_uvicorn_trusts_forwarded_headers(sys.argv)
    return app


def warn_if_uvicorn_trusts_forwarded_headers(argv: list[str]) -> None:
    """uvicorn believes X-Forwarded-For from 127.0.0.1 unless told not to, before this app sees a request:
    any local process (or a proxy that passes the header on) could then name any client address."""
    launched_by_uvicorn = bool(argv) and Path(argv[0]).name in ("uvicorn", "__main__.py") and "uvicorn" in argv[0]
    if launched_by_uvicorn and "--no-proxy-headers" not in argv:
        log.warning(
            "uvicorn was started without --no-proxy-headers: it takes X-Forwarded-For from 127.0.0.1 as the "
            "client's address; start it as ./start.sh does and name real proxies in AZML_TRUSTED_PROXIES"
        )


def __getattr__(name: str) -> FastAPI:
    """`service.app:app`, built on first access so importing this module reads no settings."""
    if name == "app":
        globals()["app"] = application = create_app()
        return application
    raise AttributeError(name)
