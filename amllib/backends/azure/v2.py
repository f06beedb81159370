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

import hashlib
import json
import re
import shlex
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from amllib.backends.azure.auth import choose_credential, scrub
from amllib.backends.azure.common import (
    DATA_TAG,
    SCALE_DOWN_SECONDS,
    SCRIPT_TAG,
    AzureBackend,
    check_arrived,
    check_compute_name,
    map_status,
    new_data_prefix,
    tail_text,
)
from amllib.backends.azure.env import PYTHON_VERSION, TRAINING_PIP_PACKAGES
from amllib.backends.base import (
    DataVersion,
    ModelVersion,
    RunInfo,
    RunSpec,
    RunStatus,
    epoch_seconds,
    numeric_accuracy,
    whole_lines,
)
from amllib.digest import list_files, move_files, tree_digest
from amllib.errors import (
    BackendUnavailable,
    Conflict,
    DataNotFound,
    InvalidInput,
    ModelNotFound,
    NotFound,
    RunNotFound,
    quoted,
)
from amllib.paths import check_name, check_script, check_script_args, safe_relpath
from amllib.settings import Settings

ARTIFACT_STORE = "workspaceartifactstore"
LOG_NAMES = ("user_logs/std_log.txt", "user_logs/std_log_process_0.txt")  # a multi-process job: one per process
DATA_INPUT = "${{inputs.data}}"
# Tags this backend writes on a job and reads back; the rest are the caller's.
SPEC_TAGS = ("azml_script", "azml_datapath", "azml_estimators", "azml_args")
PATH_TAG = "azml_path"
_ASSET_NAME = re.compile(r"[^A-Za-z0-9_.-]")
REGISTER_ATTEMPTS = 5


def job_name(job_id: str | None) -> str:
    """The job's name in the workspace: derived from the service's job id, so a restart finds it."""
    return f"azml-{job_id}" if job_id else f"azml-{uuid.uuid4().hex}"


def asset_name(path: str) -> str:
    """A Data asset name for a datastore path (names allow letters, digits, '-', '_', '.')."""
    cleaned = _ASSET_NAME.sub("-", path)
    return cleaned if cleaned == path else f"{cleaned}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


def _from_millis(value: int | None) -> float | None:
    """MLflow's times are epoch milliseconds."""
    return value / 1000 if value else None


class AzureMLV2Backend(AzureBackend):
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
        compute_timeout_minutes: int = 20,
    ) -> None:
        """client: an MLClient (built from the settings when None); mlflow_client: an MlflowClient
        on the workspace's tracking URI (built on first use); account_url(datastore): where its blobs
        are (tests point it at Azurite); container_client: azure.storage.blob.ContainerClient's place."""
        self.settings = settings
        self._client = client
        self._mlflow = mlflow_client
        self._account_url = account_url or _account_url
        self._container_client = container_client
        self.retry_delay = retry_delay
        self.compute_timeout_minutes = compute_timeout_minutes
        self._register_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # -- connection ------------------------------------------------------------
    @property
    def client(self) -> Any:
        """MLClient for the workspace; building it contacts nothing, so failures surface on first call."""
        if self._client is None:
            self.settings.require("subid", "resgrp", "workspace")
            from azure.ai.ml import MLClient

            self.method, credential = choose_credential(self.settings)
            self._client = MLClient(
                credential,
                subscription_id=self.settings.subid,
                resource_group_name=self.settings.resgrp,
                workspace_name=self.settings.workspace,
                show_progress=False,
            )
        return self._client

    @property
    def mlflow(self) -> Any:
        """MlflowClient on the workspace's tracking URI (azureml-mlflow makes azureml:// work)."""
        if self._mlflow is None:
            from mlflow.tracking import MlflowClient

            workspace = self._call("reading the workspace", self.client.workspaces.get, self.settings.workspace)
            self._mlflow = MlflowClient(tracking_uri=workspace.mlflow_tracking_uri)
        return self._mlflow

    def _container(self, datastore_name: str | None = None) -> tuple[Any, Any]:
        """(datastore, a storage ContainerClient on it with the credentials the workspace holds for it)."""
        from azure.storage.blob import ContainerClient

        make_client = self._container_client or ContainerClient
        datastores = self.client.datastores
        if datastore_name is None:
            datastore = self._call("getting the default datastore", datastores.get_default, include_secrets=True)
        else:
            datastore = self._call(
                f"getting datastore {datastore_name}", datastores.get, datastore_name, include_secrets=True
            )
        credentials = datastore.credentials
        secret = getattr(credentials, "account_key", None) or getattr(credentials, "sas_token", None)
        if secret is None:  # identity-based datastore: the caller's own identity needs Storage Blob Data roles
            secret = choose_credential(self.settings)[1]
        container = make_client(self._account_url(datastore), datastore.container_name, credential=secret)
        return datastore, container

    # -- datastore -------------------------------------------------------------
    def upload_data(self, src_dir: Path, *, target_path: str) -> DataVersion:
        """Upload under a prefix of its own, check every blob, then register it as a new Data asset version.

        Each asset version names its own prefix, so version 1 keeps version 1's files for good and a
        run submitted while an upload is under way reads one whole version (common.new_data_prefix).
        """
        target = str(safe_relpath(target_path, what="data path"))
        if not src_dir.is_dir():
            raise InvalidInput(f"data folder {str(src_dir)!r} does not exist or is not a folder")
        summary = tree_digest(src_dir)
        if summary.files == 0:
            raise InvalidInput(f"data folder {str(src_dir)!r} holds no files")
        datastore, container = self._container()
        prefix = new_data_prefix(target)
        files = list_files(src_dir)
        for rel, full in files:
            self._call(f"uploading {quoted(rel)}", _upload_file, container, f"{prefix}/{rel}", full)
        check_arrived(prefix, files, self._blobs(container, prefix + "/"))
        data = DataVersion(path=target, digest=summary.digest, files=summary.files, bytes=summary.bytes)
        self._register_data(datastore.name, data, prefix)
        return data

    def _blobs(self, container: Any, prefix: str) -> dict[str, int]:
        return self._call(
            f"listing {quoted(prefix)}", lambda: {b.name: b.size for b in container.list_blobs(name_starts_with=prefix)}
        )

    def _register_data(self, datastore_name: str, data: DataVersion, prefix: str) -> None:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Data

        asset = Data(
            name=asset_name(data.path),
            path=f"azureml://datastores/{datastore_name}/paths/{prefix}/",
            type=AssetTypes.URI_FOLDER,
            description=f"uploaded by the AML control plane to {data.path}",
            tags={PATH_TAG: data.path, "digest": data.digest, "files": str(data.files), "bytes": str(data.bytes)},
        )
        self._call(f"registering data {quoted(data.path)}", self.client.data.create_or_update, asset)

    @staticmethod
    def _data_version(asset: Any) -> DataVersion | None:
        tags = asset.tags or {}
        if PATH_TAG not in tags:
            return None
        return DataVersion(
            path=tags[PATH_TAG],
            digest=tags.get("digest", ""),
            files=int(tags.get("files", 0)),
            bytes=int(tags.get("bytes", 0)),
        )

    def current_data(self, target_path: str) -> DataVersion | None:
        asset = self._latest_asset(asset_name(str(safe_relpath(target_path, what="data path"))))
        return self._data_version(asset) if asset is not None else None

    def list_data(self) -> list[DataVersion]:
        """The latest version of every Data asset this tool registered."""
        names = self._call("listing data assets", lambda: [asset.name for asset in self.client.data.list()])
        assets = [asset for asset in map(self._latest_asset, names) if asset is not None]
        found = [data for data in map(self._data_version, assets) if data is not None]
        return sorted(found, key=lambda data: data.path)

    def _latest_asset(self, name: str) -> Any:
        """The asset's latest version; None when there is none (the SDK says so with MlException, not a 404)."""
        try:
            return self._call(f"reading data {name}", self.client.data.get, name, label="latest")
        except NotFound:
            return None

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
            name=job_name(spec.tags.get("job_id")),
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
        try:
            created = self._call(f"submitting {spec.script}", self.client.jobs.create_or_update, job)
        except Conflict:
            # A retried create after a lost response meets the job it made: that job is this submit's.
            found = self._call(f"reading job {job.name}", self.client.jobs.get, job.name)
            if (found.tags or {}).get("job_id") != spec.tags.get("job_id") or not spec.tags.get("job_id"):
                raise
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

    def _list_jobs(self) -> list[Any]:
        """Every job the SDK can read: jobs.list() yields None for one it cannot parse and raises
        JobException for job types it does not support (_job_operations.py, list); those are skipped."""
        from azure.ai.ml.exceptions import JobException

        found, jobs = [], iter(self.client.jobs.list())
        while True:
            try:
                job = next(jobs)
            except StopIteration:
                return found
            except JobException:
                continue  # a job type this SDK version cannot represent: not a run of a training script
            if job is not None:
                found.append(job)

    def list_runs(self, *, created_after: float = 0.0, limit: int = 500) -> list[RunInfo]:
        found = []
        for job in self._call("listing jobs", self._list_jobs):
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
        created = epoch_seconds(getattr(job.creation_context, "created_at", None)) or time.time()
        started = finished = None
        if with_times and status.terminal:  # its times, and the tags the script set, live in its MLflow run
            try:
                mlflow_run = self._call(f"reading run {job.name}", self.mlflow.get_run, job.name)
            except BackendUnavailable:
                raise
            except Exception:
                mlflow_run = None  # the script never logged: no MLflow run
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
            error="the job failed on Azure ML; see its log" if status == RunStatus.FAILED else None,
            data_version=tags.pop(DATA_TAG, None) or None,
            script_digest=tags.pop(SCRIPT_TAG, None) or None,
            tags=tags,
            datapath=raw.get("azml_datapath"),
            compute=job.compute,
            estimators=int(estimators) if estimators.isdigit() else None,
            args=json.loads(raw.get("azml_args") or "{}"),
        )

    def get_metrics(self, run_id: str) -> dict[str, list[Any]]:
        """Every value of every metric through MLflow, in the order logged (step, then time)."""
        self._job(run_id)  # RunNotFound for an unknown id
        try:
            run = self._call(f"reading metrics of {run_id}", self.mlflow.get_run, run_id)
        except BackendUnavailable:
            raise
        except Exception:
            return {}  # no MLflow run yet: nothing logged
        history = {}
        for key in sorted(run.data.metrics):
            points = self._call(f"reading {key} of {run_id}", self.mlflow.get_metric_history, run_id, key)
            history[key] = [p.value for p in sorted(points, key=lambda p: (p.step, p.timestamp))]
        return history

    def _log_blob(self, run_id: str) -> Any:
        """std_log.txt, or a multi-process job's first process log when that is what it wrote."""
        _, container = self._container(ARTIFACT_STORE)
        folder = f"ExperimentRun/dcid.{run_id}/"
        present = self._blobs(container, folder + "user_logs/")
        name = next((folder + n for n in LOG_NAMES if folder + n in present), folder + LOG_NAMES[0])
        return container.get_blob_client(name)

    def read_log(self, run_id: str, offset: int) -> tuple[str, int]:
        self._job(run_id)
        blob = self._log_blob(run_id)
        try:
            chunk = self._call(f"reading the log of {run_id}", lambda: blob.download_blob(offset=offset).readall())
        except NotFound:
            return "", offset  # not written yet
        except Exception as exc:
            if getattr(exc, "status_code", None) == 416:  # nothing past offset: at the end, or past it
                size = self._call(f"reading the log of {run_id}", lambda: blob.get_blob_properties().size)
                return "", min(offset, size)
            raise
        return whole_lines(chunk, offset)

    def get_log(self, run_id: str, *, tail: int | None = None) -> str:
        self._job(run_id)
        blob = self._log_blob(run_id)
        try:
            text = self._call(f"reading the log of {run_id}", lambda: blob.download_blob().readall()).decode(
                errors="replace"
            )
        except NotFound:
            return ""
        return tail_text(text, tail)

    def cancel_run(self, run_id: str) -> None:
        job = self._job(run_id)
        if not map_status(job.status).terminal:
            self._call(f"canceling {run_id}", self.client.jobs.begin_cancel, run_id)

    def list_run_outputs(self, run_id: str) -> list[str]:
        self._job(run_id)
        _, container = self._container(ARTIFACT_STORE)
        prefix = f"ExperimentRun/dcid.{run_id}/outputs/"
        return sorted(name.removeprefix(prefix) for name in self._blobs(container, prefix))

    # -- registry --------------------------------------------------------------
    def _model_versions(self, name: str) -> list[Any]:
        try:
            return self._call(f"listing versions of {name}", lambda: list(self.client.models.list(name=name)))
        except NotFound:
            return []

    def register_model(self, *, run_id: str, model_name: str, tags: dict[str, Any]) -> ModelVersion:
        """A run is registered once (a version already made from it is returned), and versions never collide.

        Without a version, models.create_or_update picks the next number client-side (container.next_version),
        so two registrations at once could take the same one. Here each names its version explicitly, one
        registration per model at a time in this process, and a 409 (another process took it) retries with
        the next number.
        """
        check_name(model_name, what="model name")
        with self._register_lock(model_name):
            made = [m for m in self._model_versions(model_name) if (m.properties or {}).get("run_id") == run_id]
            if made:
                return self._version(min(made, key=lambda m: int(m.version)))
            info = self.get_run(run_id)
            if info.status != RunStatus.COMPLETED or not self.list_run_outputs(run_id):
                raise InvalidInput(f"run {run_id} produced no files in outputs/; nothing to register")
            for _ in range(REGISTER_ATTEMPTS):
                version = 1 + max((int(m.version) for m in self._model_versions(model_name)), default=0)
                try:
                    created = self._call(
                        f"registering {model_name}",
                        self.client.models.create_or_update,
                        self._model(run_id, model_name, tags, info, version),
                    )
                except Conflict:
                    continue  # another registration took that number first
                return self._version(created)
        raise BackendUnavailable(
            f"registering {model_name}: version numbers kept colliding ({REGISTER_ATTEMPTS} tries)"
        )

    def _register_lock(self, model_name: str) -> threading.Lock:
        with self._locks_guard:
            return self._register_locks.setdefault(model_name, threading.Lock())

    @staticmethod
    def _model(run_id: str, model_name: str, tags: dict[str, Any], info: RunInfo, version: int) -> Any:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model

        return Model(
            name=model_name,
            version=str(version),
            path=f"azureml://jobs/{run_id}/outputs/artifacts/paths/outputs/",
            type=AssetTypes.CUSTOM_MODEL,
            tags={key: str(value) for key, value in tags.items()},
            properties={"run_id": run_id, DATA_TAG: info.data_version or "", SCRIPT_TAG: info.script_digest or ""},
        )

    @staticmethod
    def _version(model: Any) -> ModelVersion:
        tags = numeric_accuracy(model.tags)
        properties = model.properties or {}
        return ModelVersion(
            name=model.name,
            version=int(model.version),
            tags=tags,
            run_id=properties.get("run_id") or None,
            created_at=epoch_seconds(getattr(model.creation_context, "created_at", None)) or 0.0,
            data_version=properties.get(DATA_TAG) or None,
            script_digest=properties.get(SCRIPT_TAG) or None,
        )

    def list_models(self) -> list[str]:
        return sorted({m.name for m in self._call("listing models", lambda: list(self.client.models.list()))})

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        return sorted((self._version(m) for m in self._model_versions(name)), key=lambda v: v.version)

    def versions_of_run(self, run_id: str) -> list[ModelVersion]:
        return [v for name in self.list_models() for v in self.list_model_versions(name) if v.run_id == run_id]

    def download_model(self, name: str, version: int, dest: Path) -> list[str]:
        """models.download, then the files under the model's outputs/ folder moved into dest."""
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".download-", dir=dest.parent) as folder:
            try:
                self._call(
                    f"downloading {name}:{version}",
                    self.client.models.download,
                    name,
                    str(version),
                    download_path=folder,
                )
            except NotFound as exc:
                raise ModelNotFound(f"model {quoted(name)} version {version} not found") from exc
            root = Path(folder) / name
            outputs = next((p for p in sorted(root.rglob("outputs")) if p.is_dir()), root if root.is_dir() else None)
            if outputs is None:
                raise BackendUnavailable(f"model {name}:{version} downloaded no files")
            return move_files(outputs, dest)


def _upload_file(container: Any, name: str, path: Path) -> None:
    """One blob from one file, the file opened anew for each try: a retry of a read-out handle would send 0 bytes."""
    with path.open("rb") as handle:
        container.upload_blob(name, handle, overwrite=True)


def _account_url(datastore: Any) -> str:
    """https://<account>.blob.<endpoint>, as the SDK builds it for a blob datastore."""
    endpoint = getattr(datastore, "endpoint", None) or "core.windows.net"
    protocol = getattr(datastore, "protocol", None) or "https"
    return f"{protocol}://{datastore.account_name}.blob.{endpoint}"
