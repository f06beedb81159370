"""Carries out jobs in the background: blocking backend calls run in a thread pool, off the event loop.

Data and fetch jobs are bounded by AZML_JOB_CONCURRENCY; a run job submits its
run (tagged with the job id, so a restart finds it again instead of submitting
twice) and then watches it. On start-up resume() picks up every unfinished job,
so a job accepted is never lost, whatever killed the service.

Several replicas (a PostgreSQL store): each job is leased to the replica carrying it out.
keep_leases() renews this replica's leases every third of AZML_LEASE_SECONDS, stops
acting on a job whose lease another replica took (a long pause, a network cut), and takes
over jobs whose owner stopped renewing (it died): resumed like after a restart, found
again at the backend by their tag, never submitted or registered twice.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from amllib import data_profile
from amllib.backends.base import Backend, RunInfo, RunSpec, RunStatus
from amllib.digest import TreeSummary
from amllib.endpoints import get_endpoints
from amllib.endpoints.base import Endpoints
from amllib.errors import AmlError, BackendUnavailable, Conflict, InvalidInput, MetricsUnavailable
from amllib.fetch import fetch_model
from amllib.jsonsafe import json_safe
from amllib.paths import check_folder_target, resolve_inside
from amllib.settings import Settings
from amllib.training import finish_run, last_values
from service.core import rollout
from service.core.backend_calls import BackendCalls
from service.core.delivery import deliver
from service.core.job_kinds import DataSpec, DeploySpec, FetchSpec, Notify, notify_of, shaped
from service.core.job_kinds import RunSpec as RunJobSpec
from service.core.jobs import TERMINAL_NAMES, Jobs, is_terminal
from service.core.read_budget import ReadBudget
from service.core.redact import ErrorWriter
from service.core.schemas import render
from service.core.store import SENDING, Job, LeaseLost, Tx
from service.errors import StoreUnavailable
from service.observe import logs
from service.observe.metrics import ServiceMetrics

log = logging.getLogger("service")
Notifier = Callable[[Settings, dict[str, Any], Notify], Awaitable[str]]
LOG_TAIL = 30
CLAIM_BATCH = 500
LOST = "failed: the process sending it stopped before it knew the outcome"
UNREACHABLE_SECONDS = 600.0
PROFILES = "cache/data-profiles"  # under AZML_HOME: an uploaded version's first rows and column profile
MAX_BACKOFF = 8  # a quiet run is polled at most every 8 × AZML_POLL_SECONDS
STORE_PAUSE_MAX = 30.0  # seconds between tries to carry on a job while the job store can't be reached


def run_result(info: RunInfo, metrics: dict[str, Any], *, metrics_error: str | None = None, **extra: Any) -> dict:
    """What a run job records of its run: last metric values (or why they could not be read), data version and
    script digest (lineage)."""
    recorded = {"metrics": metrics, "data_version": info.data_version, "script_digest": info.script_digest}
    if info.studio_url:
        recorded["studio_url"] = info.studio_url
    if metrics_error:
        recorded["metrics_error"] = metrics_error
    return {**recorded, **extra}


def scalar_metrics(history: dict[str, list[Any]]) -> dict[str, Any]:
    """Each metric's last value, for metrics whose values are plain numbers or strings (as JSON takes them:
    NaN and ±Infinity become those words, amllib/jsonsafe.py)."""
    return json_safe({k: v for k, v in last_values(history).items() if isinstance(v, int | float | str | bool)})


def backend_threads(settings: Settings) -> int:
    """Threads for backend calls: two per job that may run at once, and four for reads."""
    return 4 + 2 * settings.job_concurrency


class Worker:
    """Runs each accepted job to its end and then tells its callback."""

    def __init__(
        self,
        *,
        settings: Settings,
        backend: Backend,
        jobs: Jobs,
        metrics: ServiceMetrics | None = None,
        notify: Notifier | None = None,
        calls: BackendCalls | None = None,
    ) -> None:
        """notify(settings, job body, the job's spec["notify"]) posts a chat notice and says how it went:
        the chat platforms' (service/chatops/notices.py), given by the app, so the worker knows no chat.
        calls: the backend's thread pool the app shares with the routes (one of its own when None)."""
        self.settings = settings
        self.notify = notify
        self.backend = backend
        self.jobs = jobs
        self.store = jobs.store
        self.errors = ErrorWriter(settings)
        self.metrics = metrics
        self._own_calls = calls is None
        self.calls = calls or BackendCalls(threads=backend_threads(settings), metrics=metrics)
        self._slots = asyncio.Semaphore(settings.job_concurrency)
        self._submits = asyncio.Semaphore(1)  # one at a time: a burst of submits must not starve the event loop
        self._tasks: set[asyncio.Task] = set()
        self._carrying: dict[str, asyncio.Task] = {}  # job id → the task acting on it
        self.replica = jobs.replica
        # Azure counts requests against quotas: every watcher's reads come out of one budget (core/read_budget.py).
        self.read_budget = ReadBudget(settings.backend_reads_per_second) if settings.on_azure else None
        self._endpoints: Endpoints | None = None
        self._deploying: dict[str, asyncio.Lock] = {}  # one change of an endpoint at a time in this process

    @property
    def endpoints(self) -> Endpoints:
        """The backend's online endpoints (InvalidInput naming why, on a backend that has none)."""
        if self._endpoints is None:
            self._endpoints = get_endpoints(self.settings, self.backend)
        return self._endpoints

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def start(self, job: Job, *, resumed: bool = False) -> None:
        """Carry out job (unfinished), or post what it owes (ended), unless this replica already is."""
        if job.id in self._carrying and not self._carrying[job.id].done():
            return
        work = self._carry_out(job.id, resumed=resumed) if not is_terminal(job.status) else self._deliver(job.id)
        task = self._carrying[job.id] = self._spawn(work)
        task.add_done_callback(functools.partial(self._done, job.id))

    def _done(self, job_id: str, task: asyncio.Task) -> None:
        if self._carrying.get(job_id) is task:
            del self._carrying[job_id]

    def staging_in_use(self) -> set[Path]:
        """The staging folders of uploads whose jobs have not ended (never discarded)."""
        unfinished = self.store.unfinished(TERMINAL_NAMES)
        staged = [shaped(job.spec, DataSpec).get("staging") for job in unfinished if job.kind == "data"]
        return {Path(staging).resolve() for staging in staged if staging}

    async def resume(self) -> int:
        """Pick up every job a previous process left unfinished, and undelivered callbacks.

        On an embedded store (one process) that is every such job; on a shared one, those whose
        lease ran out (their replica died): the rest are carried out by live replicas.
        """
        await self.calls(self.backend.discard_stale_staging, keep=self.staging_in_use())  # only hour-old leftovers
        return await self._take_over(everything=not self.store.shared)

    async def _take_over(self, *, everything: bool) -> int:
        taken = 0
        while True:
            claim = functools.partial(
                _claim, owner=self.replica, lease=self.jobs.lease_seconds, everything=everything, limit=CLAIM_BATCH
            )
            jobs = await self.store.write(claim)
            for job in jobs:
                if not is_terminal(job.status):
                    log.info("resuming %s job %s (%s)", job.kind, job.id, job.status)
                    taken += 1
                self.start(job, resumed=True)
            if len(jobs) < CLAIM_BATCH:
                return taken

    async def keep_leases(self) -> None:
        """Renew this replica's leases, drop jobs another replica took, take jobs whose replica died; forever."""
        lease = self.jobs.lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            try:
                await self.renew_leases()
            except Exception:
                log.exception("renewing job leases failed; trying again in %.0f s", lease / 3)

    async def renew_leases(self) -> None:
        """Renew; stop the tasks of jobs no longer ours; carry on any job still ours that no task carries."""
        carrying = dict(self._carrying)  # before the renewal: each of these jobs was stored before it started
        renew = functools.partial(_renew, owner=self.replica, lease=self.jobs.lease_seconds)
        owned = await self.store.write(renew)
        for job_id, task in carrying.items():
            if job_id not in owned and not task.done():
                log.warning("job %s: its lease went to another replica; this one stops acting on it", job_id)
                task.cancel()
        for job_id in owned - set(self._carrying):
            job = self.store.get(job_id)
            if job is not None and job.owner == self.replica:
                self.start(job, resumed=True)
        if self.store.shared:
            await self._take_over(everything=False)

    def keep_running(self, coro: Any) -> None:
        """Run a background loop (the run importer, the retention sweep) until close()."""
        self._spawn(coro)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._own_calls:
            self.calls.close()

    async def _carry_out(self, job_id: str, *, resumed: bool = False) -> None:
        """Carry the job to its end; while the job store can't be reached, wait and carry on where it was.

        A store error is never the job's outcome: the job is taken up again as after a restart (its run
        found by its tag, its model version by its run), once the store answers.
        """
        pause = 1.0
        while True:
            try:
                await self._attempt(job_id, resumed=resumed)
                return
            except StoreUnavailable as exc:
                log.warning("job %s: %s; carrying it on in %.0f s", job_id, exc, pause)
                await asyncio.sleep(pause)
                pause, resumed = min(pause * 2, STORE_PAUSE_MAX), True

    async def _attempt(self, job_id: str, *, resumed: bool) -> None:
        job = self._job(job_id)
        if is_terminal(job.status):  # it ended before the store went away: only its callback may be owed
            await self._deliver(job_id)
            return
        logs.bind_job(job_id, caller=job.spec.get("created_by"), run_id=job.backend_run_id)
        try:
            if job.kind == "run":
                await self._run(job, resumed=resumed)
            else:
                async with self._slots:
                    if job.kind == "deploy":
                        await self._deploy(job)
                    else:
                        await (self._data(job) if job.kind == "data" else self._fetch(job))
        except asyncio.CancelledError:
            raise  # the service is stopping (the job resumes at the next start), or its lease was lost
        except LeaseLost as exc:
            log.warning("%s; this replica stops acting on it", exc)
            return
        except StoreUnavailable:
            raise
        except Exception as exc:
            if not isinstance(exc, AmlError):
                log.exception("job %s failed unexpectedly", job_id)
            message, kind = self.errors.describe(exc)
            try:
                await self._move(job_id, RunStatus.FAILED, error=message, error_kind=kind)
            except LeaseLost:
                return
        await self._deliver(job_id)

    async def _move(self, job_id: str, status: str, **fields: Any) -> Job | None:
        """A transition this replica makes as the job's owner (LeaseLost once another replica took it)."""
        return await self.jobs.transition(job_id, status, as_owner=True, **fields)

    async def _set(self, job_id: str, **fields: Any) -> Job:
        return await self.jobs.update(job_id, as_owner=True, **fields)

    # -- data ----------------------------------------------------------------
    async def _data(self, job: Job) -> None:
        spec = shaped(job.spec, DataSpec)
        await self._move(job.id, RunStatus.RUNNING)
        source = Path(spec["data_dir"] if spec["source"] == "folder" else spec["staging"])
        profile = await self._profile(source)  # before the upload: a staged copy is moved away by it
        if spec["source"] == "folder":
            data = await self.calls(self.backend.upload_data, Path(spec["data_dir"]), target_path=spec["path"])
        elif Path(spec["staging"]).is_dir():
            summary = TreeSummary(**spec["summary"])
            data = await self.calls(
                self.backend.upload_staged, Path(spec["staging"]), target_path=spec["path"], summary=summary
            )
        else:  # stopped after the data moved in but before the job was marked done?
            current = await self.calls(self.backend.current_data, spec["path"])
            if current is None or current.digest != spec["summary"]["digest"]:
                raise BackendUnavailable("the staged upload was lost when the service stopped; upload it again")
            data = current
        if profile is not None:
            await self.calls(data_profile.save, profile, self.settings.home / PROFILES, data.digest)
        await self._move(
            job.id, RunStatus.COMPLETED, result={"files": data.files, "bytes": data.bytes, "digest": data.digest}
        )

    async def _profile(self, folder: Path) -> dict[str, Any] | None:
        """The version's first rows and column profile (amllib/data_profile.py); never a reason to fail it."""
        if not folder.is_dir():
            return None
        try:
            return await self.calls(data_profile.profile_folder, folder)
        except Exception as exc:  # a file the profiler meets badly must not cost the upload
            log.warning("the data's profile could not be made: %s", type(exc).__name__)
            return None

    # -- fetch ---------------------------------------------------------------
    async def _fetch(self, job: Job) -> None:
        spec = shaped(job.spec, FetchSpec)
        await self._move(job.id, RunStatus.RUNNING)
        if self.settings.output_root is None:  # accepted before a restart that unset it
            raise InvalidInput("fetching to the server's disk is off now: AZML_OUTPUT_ROOT is not set")
        root = self.settings.output_root.resolve()
        target = resolve_inside(root, spec["output_path"], what="output_path")
        check_folder_target(root, target, value=spec["output_path"], what="output_path")  # it may have changed
        result = await self.calls(
            fetch_model,
            self.backend,
            name=spec["model"],
            output_path=target,
            version=spec.get("version"),
            use_best=spec.get("use_best", False),
            alias=spec.get("alias"),
            attempt=job.id,
        )
        await self._move(
            job.id,
            RunStatus.COMPLETED,
            result={
                "version": result.model.version,
                "files": [*result.files, "metadata.json"],
                "metadata": result.metadata,
                "fell_back_to_latest": result.fell_back_to_latest,
            },
        )

    # -- deployments ---------------------------------------------------------
    async def _deploy(self, job: Job) -> None:
        """Blue/green (service/core/rollout.py), one change of an endpoint at a time. Carried out again after
        a restart, it lands where the first attempt would have: a slot holding the version is reused."""
        spec = shaped(job.spec, DeploySpec)
        await self._move(job.id, RunStatus.RUNNING)
        endpoints = self.endpoints
        lock = self._deploying.setdefault(spec["endpoint"], asyncio.Lock())
        async with lock:
            if spec["action"] == "rollback":
                result = await self.calls(rollout.rollback, endpoints, dict(spec))
            else:
                result = await self.calls(rollout.deploy, endpoints, self.backend, dict(spec))
        await self._move(job.id, RunStatus.COMPLETED, result=json_safe(result))

    # -- runs ----------------------------------------------------------------
    async def _run(self, job: Job, *, resumed: bool) -> None:
        run_id = job.backend_run_id
        if run_id is None:
            if job.cancel_requested:
                await self._move(job.id, RunStatus.CANCELED, error="canceled before it started", error_kind="canceled")
                return
            async with self._submits:
                run_id = await self._submit(job, resumed=resumed)
        await self._watch(job.id, run_id)

    async def _submit(self, job: Job, *, resumed: bool) -> str:
        spec = shaped(job.spec, RunJobSpec)
        found = []
        if resumed:  # the previous process may have submitted it just before it stopped
            found = await self.calls(self.backend.find_runs, spec["experiment"], tag="job_id", value=job.id)
        if found:
            run_id = found[0]  # submitted before the service stopped; do not submit twice
        else:
            expected = spec.get("data_version")
            if expected:  # a data trigger's run reads the version it fired for, or says why not
                current = await self.calls(self.backend.current_data, spec["datapath"])
                if current is None or current.digest != expected:
                    now = current.digest if current else "nothing"
                    raise Conflict(
                        f"the data at {spec['datapath']} it fired for ({expected}) was replaced by {now} before "
                        "the run started; the schedule fires for the new version"
                    )
            await self.calls(self.backend.ensure_compute, spec["compute"])
            run_spec = RunSpec(
                script=spec["script"],
                experiment=spec["experiment"],
                datapath=spec["datapath"],
                compute=spec["compute"],
                estimators=spec.get("estimators"),
                args=spec.get("args", {}),
                tags={"job_id": job.id},
            )
            run_id = await self.calls(self.backend.submit_run, run_spec)
        await self._set(job.id, backend_run_id=run_id)
        logs.bind_run(run_id)
        return run_id

    async def _watch(self, job_id: str, run_id: str) -> None:
        cancel_sent, unreachable_since, seen = False, None, None
        loop = asyncio.get_running_loop()
        interval = self.settings.poll_seconds
        while True:
            job = self._job(job_id)
            if is_terminal(job.status):
                return
            if job.cancel_requested and not cancel_sent:
                await self.calls(self.backend.cancel_run, run_id)
                cancel_sent = True
            try:
                if self.read_budget is not None:
                    await self.read_budget.take(1)
                info = await self.calls(self.backend.get_run, run_id)
                metrics, metrics_error = {}, None
                if info.status != RunStatus.QUEUED:  # nothing is logged before it starts
                    if self.read_budget is not None:
                        await self.read_budget.take(1)
                    history, metrics_error = await self._history(run_id)
                    metrics = scalar_metrics(history) if metrics_error is None else (seen or (None, {}))[1]
                unreachable_since = None
            except BackendUnavailable as exc:
                unreachable_since = unreachable_since or loop.time()
                if loop.time() - unreachable_since > UNREACHABLE_SECONDS:
                    raise BackendUnavailable(
                        f"run {run_id} could not be reached for {UNREACHABLE_SECONDS:.0f} s: {exc}"
                    ) from exc
                await asyncio.sleep(self.settings.poll_seconds)
                continue
            if info.status.terminal:
                await self._settle(job_id, info, metrics)
                return
            if (info.status, metrics) != seen:
                await self._move(job_id, info.status, result=run_result(info, metrics, metrics_error=metrics_error))
                seen = (info.status, metrics)
                interval = self.settings.poll_seconds
            else:  # back off while nothing changes, so hundreds of waiting runs cost little
                interval = min(interval * 1.5, self.settings.poll_seconds * MAX_BACKOFF)
            await asyncio.sleep(interval)

    async def _settle(self, job_id: str, info: RunInfo, metrics: dict[str, Any]) -> None:
        job, run_id, status = self._job(job_id), info.run_id, info.status
        spec = shaped(job.spec, RunJobSpec)
        if status == RunStatus.COMPLETED:
            await self._move(job_id, RunStatus.FINALIZING, result=run_result(info, metrics))
            if spec.get("imported"):  # whoever started it registers it; the importer picks the version up
                history, metrics_error = await self._history(run_id)
                versions = await self.calls(self.backend.versions_of_run, run_id)
                version = versions[0] if versions else None
            else:
                done = await self.calls(finish_run, self.backend, run_id, model_name=spec["model"])
                history, version, metrics_error = done.metrics, done.model_version, done.metrics_error
            made = {"name": version.name, "version": version.version} if version else None
            result = run_result(info, scalar_metrics(history), model_version=made, metrics_error=metrics_error)
            await self._move(job_id, RunStatus.COMPLETED, result=result)
            return
        tail = await self.calls(self.backend.get_log, run_id, tail=LOG_TAIL)
        reason = self.errors.redact(info.error) if info.error else f"run {status.lower()}"
        if tail.strip():
            reason += f"\n--- last {LOG_TAIL} lines of the run's log ---\n{tail}"
        kind = "canceled" if status == RunStatus.CANCELED else "run_failed"
        await self._move(job_id, status, error=reason, error_kind=kind, result=run_result(info, metrics))

    async def _history(self, run_id: str) -> tuple[dict[str, list[Any]], str | None]:
        """Every metric's values, or why they could not be read (a run that logged none has {} and no reason)."""
        try:
            return await self.calls(self.backend.get_metrics, run_id), None
        except MetricsUnavailable as exc:
            return {}, self.errors.redact(str(exc))

    # -- callbacks -------------------------------------------------------------
    async def _deliver(self, job_id: str) -> None:
        try:
            await self._callback(job_id)
        except LeaseLost as exc:
            log.warning("%s; this replica leaves its callback to it", exc)

    async def _callback(self, job_id: str) -> None:
        """Tell whoever asked that the job ended: its callback_url, and the chat that started it.

        Each is marked `sending` before it is posted: one found so was being posted by a process
        that died, and is recorded as lost rather than posted again (delivered once, or recorded).
        """
        job = self.store.get(job_id)
        if job is None or not is_terminal(job.status):
            return
        if job.callback_url and job.callback_status in (None, SENDING):
            if job.callback_status == SENDING:
                outcome = LOST
            else:
                await self._set(job_id, callback_status=SENDING)
                payload = json.dumps(render(job, self.backend.name)).encode()
                outcome = await deliver(job.callback_url, payload, job_id=job.id, secret=self.settings.webhook_secret)
            self._count("callback", outcome)
            job = await self._set(job_id, callback_status=outcome)
        notify = notify_of(job)
        if notify and job.result.get("notice") in (None, SENDING):
            if job.result.get("notice") == SENDING:
                outcome = LOST
            elif self.notify is None:
                outcome = "no notifier"  # a worker built without the chat platforms (tests of the core alone)
            else:
                body = render(job, self.backend.name)
                job = await self._set(job_id, result={**job.result, "notice": SENDING})
                outcome = await self.notify(self.settings, body, notify)
            self._count(notify["platform"], outcome)
            await self._set(job_id, result={**job.result, "notice": outcome})

    def _job(self, job_id: str) -> Job:
        """A job this worker carries out; it cannot be gone (only ended jobs are ever removed)."""
        job = self.store.get(job_id)
        if job is None:
            raise LookupError(f"job {job_id} is not in the job store")
        return job

    def _count(self, channel: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.delivered(channel, outcome)


def _claim(tx: Tx, *, owner: str, lease: float, everything: bool, limit: int) -> list[Job]:
    return tx.claim(owner, terminal=TERMINAL_NAMES, lease=lease, everything=everything, limit=limit)


def _renew(tx: Tx, *, owner: str, lease: float) -> set[str]:
    return tx.renew(owner, terminal=TERMINAL_NAMES, lease=lease)
