"""The `azureml-v2` backend: Azure ML SDK v2 (azure-ai-ml), the seed's flow past SDK v1's end of support.

Datastore = the workspace's default blob datastore, written at AZML_DATAPATH with the
storage client (the v2 Data upload picks its own LocalUpload/<hash>/ path) and registered
as a `uri_folder` Data asset whose version carries the data digest. Runs = `command` jobs
named after the service's job id, so a restarted service finds its job with jobs.get
instead of submitting twice. Metrics = MLflow, the workspace's tracking store (the job name
is the MLflow run id). Models = `custom_model` versions pointing at the job's outputs/.
azure-ai-ml, azure-identity and mlflow are imported only when this backend is built.

Proven here without Azure: every call against `create_autospec` fakes of the real operation
classes with real entity and builder classes (tests/azure/fake_aml_v2.py); the blob upload,
its check and the removal of stale blobs against Azurite. Not proven here: authentication,
cluster provisioning, jobs running on Azure, the log and outputs paths in the artifact
store, MLflow against a workspace, models.download from a real registry (tests/azure_live
with AZML_LIVE=1 AZML_BACKEND=azureml-v2 does these against a workspace).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from amllib.backends.azure.alias_books import BlobAliasBooks
from amllib.backends.azure.auth import choose_credential, scrub
from amllib.backends.azure.common import (
    DATA_TAG,
    SCALE_DOWN_SECONDS,
    SCRIPT_TAG,
    check_compute_name,
    map_status,
    run_error,
    web_address,
)
from amllib.backends.azure.env import PYTHON_VERSION, TRAINING_PIP_PACKAGES
from amllib.backends.azure.v2_registry import V2Registry
from amllib.backends.azure.v2_storage import V2Storage, _account_url, asset_name, prefix_of
from amllib.backends.base import (
    RunInfo,
    RunSpec,
    epoch_seconds,
)
from amllib.errors import (
    BackendUnavailable,
    Conflict,
    DataNotFound,
    InvalidInput,
    MetricsUnavailable,
    NotFound,
    RunNotFound,
    quoted,
)
from amllib.names import check_name, check_script_args
from amllib.paths import check_script, safe_relpath
from amllib.settings import Settings

log = logging.getLogger("amllib")
DATA_INPUT = "${{inputs.data}}"
# Tags this backend writes on a job and reads back; the rest are the caller's.
SPEC_TAGS = ("azml_script", "azml_datapath", "azml_estimators", "azml_args")
FULL_LIST_SECONDS = 3600.0  # how often list_runs reads the whole job history, not only its newest pages


def job_name(job_id: str | None) -> str:
    """The job's name in the workspace: derived from the service's job id, so a restart finds it."""
    return f"azml-{job_id}" if job_id else f"azml-{uuid.uuid4().hex}"


def _first_words(exc: BaseException) -> str:
    lines = [line.strip() for line in scrub(str(exc)).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__


def _created(job: Any) -> float:
    return epoch_seconds(getattr(job.creation_context, "created_at", None)) or time.time()


def _from_millis(value: int | None) -> float | None:
    """MLflow's times are epoch milliseconds."""
    return value / 1000 if value else None


class AzureMLV2Backend(V2Registry, V2Storage, BlobAliasBooks):
    """Backend on an Azure ML workspace through azure-ai-ml."""

    name = "azureml-v2"

    def __init__(
        self,
        settings: Settings,
        *,
        client: Any = None,
        mlflow_client: Any = None,
        account_url: Callable[[Any], str] | None = None,
        container_client: Callable[..., Any] | None = None,
        retry_delay: float = 1.0,
        retry_sleep: Callable[[float], Any] | None = None,
        credential: Any = None,
        session: Any = None,
    ) -> None:
        """client: an MLClient (built from the settings when None); mlflow_client: an MlflowClient
        on the workspace's tracking URI (built on first use); account_url(datastore): where its blobs
        are (tests point it at Azurite); container_client: azure.storage.blob.ContainerClient's place;
        credential and session: what the MLClient built here uses (tests: a static token, a requests.Session
        answering from recordings); its transport is always built here, with the timeouts."""
        super().__init__(settings, retry_delay=retry_delay, retry_sleep=retry_sleep)
        self._client = client
        self._mlflow = mlflow_client
        self._account_url = account_url or _account_url
        self._container_client = container_client
        self._given_credential = credential
        self._session = session
        self._register_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._containers = {}
        self._listed_whole = -FULL_LIST_SECONDS  # when the last whole job listing was read (monotonic)

    # -- connection ------------------------------------------------------------
    def client_options(self) -> dict[str, Any]:
        """What every azure-core client built here is given: no retries of its own (ours: retry.py), timeouts."""
        return {
            "retry_total": 0,
            "connection_timeout": self.settings.azure_connect_timeout,
            "read_timeout": self.settings.azure_read_timeout,
        }

    @property
    def credential(self) -> Any:
        """One credential for every client of this backend, so its token cache serves them all."""
        if self._given_credential is None:
            self.method, self._given_credential = choose_credential(self.settings)
        return self._given_credential

    @property
    def client(self) -> Any:
        """MLClient for the workspace; building it contacts nothing, so failures surface on first call."""
        if self._client is None:
            self.settings.require("subid", "resgrp", "workspace")
            from azure.ai.ml import MLClient
            from azure.core.pipeline.transport import RequestsTransport

            options = self.client_options()
            transport = RequestsTransport(  # one for every service client: their connections pooled together
                session=self._session,
                session_owner=self._session is None,
                connection_timeout=options["connection_timeout"],
                read_timeout=options["read_timeout"],
            )
            self._client = MLClient(
                self.credential,
                subscription_id=self.settings.subid,
                resource_group_name=self.settings.resgrp,
                workspace_name=self.settings.workspace,
                show_progress=False,
                transport=transport,
                **options,
            )
        return self._client

    @property
    def mlflow(self) -> Any:
        """MlflowClient on the workspace's tracking URI (azureml-mlflow makes azureml:// work), its own HTTP
        retries off (ours: retry.py) and its timeout ours, unless the environment says otherwise."""
        if self._mlflow is None:
            from mlflow.tracking import MlflowClient

            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(math.ceil(self.settings.azure_read_timeout)))

            workspace = self._call("reading the workspace", self.client.workspaces.get, self.settings.workspace)
            self._mlflow = MlflowClient(tracking_uri=workspace.mlflow_tracking_uri)
        return self._mlflow

    # -- compute ---------------------------------------------------------------
    def ensure_compute(self, name: str) -> str:
        """Reuse the AmlCompute of that name or create it and wait; a target of another type is a Conflict."""
        check_compute_name(name)
        from azure.ai.ml.entities import AmlCompute

        try:
            target = self._call(f"reading compute {quoted(name)}", self.client.compute.get, name)
        except NotFound:
            self._create_compute(name)
            return name
        if not isinstance(target, AmlCompute) and getattr(target, "type", None) != "amlcompute":
            kind = getattr(target, "type", None) or type(target).__name__
            raise Conflict(f"compute target {quoted(name)} exists but is a {kind}, not an AmlCompute cluster")
        return name

    def _create_compute(self, name: str) -> None:
        from azure.ai.ml.entities import AmlCompute

        cluster = AmlCompute(
            name=name,
            size=self.settings.compute_vmsize,
            min_instances=self.settings.compute_min_nodes,
            max_instances=self.settings.compute_max_nodes,
            idle_time_before_scale_down=SCALE_DOWN_SECONDS,
        )
        poller = self._call(f"creating compute {quoted(name)}", self.client.compute.begin_create_or_update, cluster)
        try:
            poller.result(timeout=self.compute_timeout_minutes * 60)
        except Exception as exc:
            raise BackendUnavailable(f"creating compute {quoted(name)} failed: {scrub(str(exc))}") from exc
        if not poller.done():  # LROPoller.result(timeout) returns when the time is up; it never raises for it
            raise BackendUnavailable(
                f"compute {quoted(name)} was not ready within {self.compute_timeout_minutes} minutes"
            )

    def environment(self) -> Any:
        """The base image (AZML_ENV_IMAGE) and pinned conda packages the training scripts need (env.py)."""
        from azure.ai.ml.entities import Environment

        conda = {
            "name": "aml-control-plane-training",
            "channels": ["conda-forge"],
            "dependencies": [f"python={PYTHON_VERSION}", "pip", {"pip": list(TRAINING_PIP_PACKAGES)}],
        }
        return Environment(image=self.settings.env_image, conda_file=conda)

    def submit_run(self, spec: RunSpec) -> str:
        """A command job named after the service's job id; the data as a uri_folder input, downloaded."""
        from azure.ai.ml import Input, command
        from azure.ai.ml.constants import AssetTypes, InputOutputModes

        check_name(spec.experiment, what="experiment")
        check_script(self.settings.training_dir, spec.script)
        check_script_args(spec.args)
        datapath = str(safe_relpath(spec.datapath, what="datapath"))
        datastore, container = self._container()
        asset = self._latest_asset(asset_name(datapath))
        data = self._data_version(asset) if asset is not None else None
        if data is None and not self._blobs(container, datapath + "/"):
            raise DataNotFound(f"no data at datastore path {quoted(datapath)}; upload it first")
        # The Data asset version when this tool uploaded it (the studio then shows the job's lineage),
        # else the datastore path as another tool left it.
        source = (
            f"azureml:{asset.name}:{asset.version}"
            if data
            else f"azureml://datastores/{datastore.name}/paths/{datapath}/"
        )
        argv = ["python", spec.script, *spec.script_arguments(DATA_INPUT)]
        name = job_name(spec.tags.get("job_id"))
        tags = {
            **spec.tags,
            DATA_TAG: data.digest if data else "",
            SCRIPT_TAG: self.script_digest(spec),
            "azml_script": spec.script,
            "azml_datapath": datapath,
            "azml_estimators": "" if spec.estimators is None else str(spec.estimators),
            "azml_args": json.dumps(spec.args, sort_keys=True),
        }
        job = command(
            name=name,
            display_name=spec.script,
            code=str(self.settings.training_dir),
            command=shlex.join(argv),
            inputs={
                "data": Input(
                    type=AssetTypes.URI_FOLDER,
                    path=source,
                    mode=InputOutputModes.DOWNLOAD,
                )
            },
            environment=self.environment(),
            compute=spec.compute,
            experiment_name=spec.experiment,
            tags=tags,
        )
        held = prefix_of(asset.path) if data is not None else None
        if held:  # the job holds its data version (data_versions)
            self._hold(container, held, name, name)
        try:
            created = self._call(f"submitting {spec.script}", self.client.jobs.create_or_update, job)
        except (Conflict, InvalidInput) as refused:
            # A retried create after a lost response meets the job it made: that job is this submit's. What Azure
            # answers a PUT of a job name that exists is not recorded (409, or a 400 UserError): either way the job
            # is read, and it is this submit's only if it carries this service job's id.
            try:
                found = self._call(f"reading job {job.name}", self.client.jobs.get, job.name)
            except NotFound:
                raise refused from None  # the refusal was about something else: it stands
            if (found.tags or {}).get("job_id") != spec.tags.get("job_id") or not spec.tags.get("job_id"):
                raise refused from None
            return found.name
        return created.name

    def _job(self, run_id: str) -> Any:
        try:
            return self._call(f"reading job {run_id}", self.client.jobs.get, run_id)
        except NotFound as exc:
            raise RunNotFound(f"run {quoted(run_id)} not found in workspace {self.settings.workspace!r}") from exc

    def find_runs(self, experiment: str, *, tag: str, value: str) -> list[str]:
        """A job submitted for a service job is found by its name; other tags by listing."""
        if tag == "job_id":
            try:
                job = self._job(job_name(value))
            except RunNotFound:
                return []
            return [job.name] if job.experiment_name == experiment else []
        jobs = self._call("listing jobs", self._list_jobs)
        return sorted(j.name for j in jobs if j.experiment_name == experiment and (j.tags or {}).get(tag) == value)

    def _list_jobs(self, *, newer_than: float | None = None) -> list[Any]:
        """The jobs the SDK can read, page by page: jobs.list() yields None for one it cannot parse and raises
        JobException for job types it does not support (_job_operations.py, list); those are skipped.

        newer_than: stop after the first page holding a job created before it. The service lists jobs newest
        first (what `az ml job list --max-results` relies on), so the pages after it hold only older jobs;
        a pass costs the new jobs' pages, not the workspace's history."""
        from azure.ai.ml.exceptions import JobException

        found: list[Any] = []
        for page in self.client.jobs.list().by_page():
            items, older = iter(page), 0
            seen = 0
            while True:
                try:
                    job = next(items)
                except StopIteration:
                    break
                except JobException:
                    continue  # a job type this SDK version cannot represent: not a run of a training script
                seen += 1
                if job is None:
                    continue
                found.append(job)
                if newer_than is not None and _created(job) <= newer_than:
                    older += 1
            if older:  # newest first: every page after this one holds only older jobs
                break
        return found

    def list_runs(self, *, created_after: float = 0.0, limit: int = 500) -> list[RunInfo]:
        """Runs created after `created_after`, oldest first. Only the newest pages are read, but for a whole
        listing every FULL_LIST_SECONDS, which finds any job the newest-first order would hide."""
        now = time.monotonic()
        full = created_after <= 0 or now - self._listed_whole >= FULL_LIST_SECONDS
        jobs = self._call("listing jobs", self._list_jobs, newer_than=None if full else created_after)
        if full:
            self._listed_whole = now
        found = []
        for job in jobs:
            if getattr(job, "type", "command") not in (None, "command"):
                continue  # pipelines, sweeps: not runs of a training script
            info = self._info(job, with_times=False)
            if info.created_at > created_after:
                found.append(info)
        return sorted(found, key=lambda info: info.created_at)[:limit]

    def get_run(self, run_id: str) -> RunInfo:
        return self._info(self._job(run_id), with_times=True)

    def _info(self, job: Any, *, with_times: bool) -> RunInfo:
        status = map_status(job.status)
        tags = dict(job.tags or {})
        created = _created(job)
        started = finished = None
        if with_times and status.terminal:  # its times, and the tags the script set, live in its MLflow run
            try:
                mlflow_run = self._mlflow_run(job.name)
            except MetricsUnavailable as exc:  # the run is still read; what MLflow holds of it is said missing
                log.warning("%s: its times and the tags its script set are left out", exc)
                mlflow_run = None
            if mlflow_run is not None:
                started, finished = _from_millis(mlflow_run.info.start_time), _from_millis(mlflow_run.info.end_time)
                tags |= {k: v for k, v in (mlflow_run.data.tags or {}).items() if not k.startswith("mlflow.")}
        for name in SPEC_TAGS:
            tags.pop(name, None)
        raw = job.tags or {}
        estimators = raw.get("azml_estimators") or ""
        return RunInfo(
            run_id=job.name,
            status=status,
            experiment=job.experiment_name or "",
            script=raw.get("azml_script") or job.display_name or "",
            created_at=created,
            started_at=started,
            finished_at=finished,
            error=run_error(job.status),
            data_version=tags.pop(DATA_TAG, None) or None,
            script_digest=tags.pop(SCRIPT_TAG, None) or None,
            tags=tags,
            datapath=raw.get("azml_datapath"),
            compute=job.compute,
            estimators=int(estimators) if estimators.isdigit() else None,
            args=json.loads(raw.get("azml_args") or "{}"),
            studio_url=web_address(job.studio_url),
        )

    def _mlflow_run(self, run_id: str) -> Any:
        """The job's MLflow run; None when MLflow has none (nothing logged yet). MetricsUnavailable when MLflow
        could not be read (auth, permission, the network): "no metrics" is never said for "could not read them"."""
        return self._mlflow_read(f"reading the MLflow run of {run_id}", self.mlflow.get_run, run_id, missing=None)

    def _mlflow_read(self, what: str, fn: Callable[..., Any], *args: Any, missing: Any) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self._call(what, fn, *args)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return missing
            raise MetricsUnavailable(f"{what}: the workspace's MLflow tracking refused: {_first_words(exc)}") from exc
        except BackendUnavailable as exc:
            raise MetricsUnavailable(f"{what}: {exc}") from exc

    def get_metrics(self, run_id: str) -> dict[str, list[Any]]:
        """Every value of every metric through MLflow, in the order logged (step, then time)."""
        self._job(run_id)  # RunNotFound for an unknown id
        run = self._mlflow_run(run_id)
        if run is None:
            return {}  # no MLflow run yet: nothing logged
        history = {}
        for key in sorted(run.data.metrics):
            points = self._mlflow_read(
                f"reading {key} of {run_id}", self.mlflow.get_metric_history, run_id, key, missing=[]
            )
            history[key] = [p.value for p in sorted(points, key=lambda p: (p.step, p.timestamp))]
        return history

    def cancel_run(self, run_id: str) -> None:
        """Ask Azure to cancel (its 202 is the answer: the job goes CancelRequested, then Canceled, which the
        watcher sees). No poller is kept (azure-core's would poll on a thread of its own for an hour); a job
        that ended between the read and the request is left alone, whatever Azure answers."""
        job = self._job(run_id)
        if map_status(job.status).terminal:
            return
        try:
            self._call(f"canceling {run_id}", self.client.jobs.begin_cancel, run_id, polling=False)
        except (Conflict, InvalidInput):
            if not map_status(self._job(run_id).status).terminal:
                raise

    # -- registry --------------------------------------------------------------
