"""A stateful stand-in for an Azure ML workspace as SDK v2 (azure-ai-ml) sees it.

The operation groups are `create_autospec` of the real classes (JobOperations,
ModelOperations, DataOperations, ComputeOperations, DatastoreOperations,
WorkspaceOperations), as are the storage ContainerClient/BlobClient and MLflow's
MlflowClient, so a wrong method or argument fails here as it would on Azure. What they
take and give are the SDK's real entities (Command jobs from `command()`, CommandJob,
Input, AmlCompute, Model, Data, Environment, AzureBlobDatastore) and MLflow's real Run,
RunInfo, RunData and Metric. Behind them, blobs live in folders, jobs really run (through
a LocalBackend playing the cloud's compute, the job's command line parsed back) and
model files are kept in that backend's registry.

What it decides that Azure might decide otherwise (documented, unproven): the job name is
the MLflow run id; a job's std_log.txt and outputs/ are at ExperimentRun/dcid.<name>/ in
the workspaceartifactstore; MLflow returns only what the script logged with MLflow.
"""

from __future__ import annotations

import shlex
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import create_autospec

from azure.ai.ml import Input
from azure.ai.ml.constants import ListViewType
from azure.ai.ml.entities import (
    AccountKeyConfiguration,
    AmlCompute,
    AzureBlobDatastore,
    CommandJob,
    Data,
    Environment,
    Job,
    Model,
    SystemData,
    Workspace,
)
from azure.ai.ml.entities._builders.command import Command
from azure.ai.ml.exceptions import (
    ErrorCategory,
    ErrorTarget,
    JobException,
    MlException,
    ValidationErrorType,
    ValidationException,
)
from azure.ai.ml.operations import (
    ComputeOperations,
    DataOperations,
    DatastoreOperations,
    JobOperations,
    ModelOperations,
    WorkspaceOperations,
)
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.polling import LROPoller
from azure.storage.blob import BlobClient, ContainerClient
from mlflow.entities import Metric, Run, RunData, RunInfo, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
from mlflow.tracking import MlflowClient

from amllib.backends import mlflow_files
from amllib.backends.azure.v2 import DATA_INPUT, AzureMLV2Backend
from amllib.backends.base import RunSpec, RunStatus, parse_script_arguments
from amllib.backends.local import LocalBackend
from amllib.files import list_files
from amllib.settings import Settings
from tests.azure.fake_blobs import downloader, on_folder

V2_STATUS = {
    RunStatus.QUEUED: "Queued",
    RunStatus.PREPARING: "Preparing",
    RunStatus.RUNNING: "Running",
    RunStatus.FINALIZING: "Finalizing",
    RunStatus.COMPLETED: "Completed",
    RunStatus.FAILED: "Failed",
    RunStatus.CANCELED: "Canceled",
}
BLOBSTORE, ARTIFACTS = "workspaceblobstore", "workspaceartifactstore"


def not_found(what: str) -> ResourceNotFoundError:
    return ResourceNotFoundError(message=f"{what} not found")


def _when(seconds: float | None) -> datetime:
    return datetime.fromtimestamp(seconds or time.time(), UTC)


class JobListing:
    """What jobs.list() yields (_job_operations.py, list): None for a job it could not parse, and a
    JobException raised for a job type it does not support; the listing goes on after either. It comes in
    pages of LIST_PAGE (by_page(), as azure-core's ItemPaged), newest first as the service lists them;
    `pages_read` counts the pages asked for (each a request on Azure)."""

    pages_read = 0

    def __init__(self, items: list[Any]) -> None:
        self._all = list(items)
        self._items = iter(self._all)

    def __iter__(self) -> JobListing:
        return self

    def __next__(self) -> Any:
        return _listed(next(self._items))

    def by_page(self) -> Any:
        for start in range(0, max(1, len(self._all)), LIST_PAGE):
            JobListing.pages_read += 1
            yield map(_listed, self._all[start : start + LIST_PAGE])


LIST_PAGE = 3


def _listed(item: Any) -> Any:
    if item == "unsupported":
        raise JobException(
            message="unsupported job type", no_personal_data_message="unsupported job type", target=ErrorTarget.JOB
        )
    return item


class FakeAzureV2:
    """One fake workspace: datastores, jobs, data assets, models, compute targets and MLflow."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root
        self.blob_root = root / "blobs"
        self.cloud = LocalBackend(settings.model_copy(update={"home": root / "cloud", "backend": "local"}))
        self.training_dir = settings.training_dir
        self.containers_made = 0  # storage clients the backend built (each one a datastore GET + listSecrets)
        self.runs: dict[str, str] = {}  # job name → the cloud's run id
        self.jobs: dict[str, CommandJob] = {}
        self.submitted: list[Command] = []
        self.status_override: dict[str, str] = {}
        self.cancel_reads: dict[str, int] = {}  # job → reads left before a cancel it was asked takes effect
        self.compute_outcome = "Succeeded"  # how a cluster's creation ends (its poller's result)
        self.archived_data: set[tuple[str, str]] = set()
        self.data_assets: dict[str, list[Data]] = {}
        self.models: dict[str, list[Model]] = {}
        self.archived_models: set[tuple[str, str]] = set()  # (name, version) archived in Azure
        self.computes: dict[str, Any] = {}
        self.datastores = {
            BLOBSTORE: AzureBlobDatastore(
                name=BLOBSTORE,
                account_name="fakeaccount",
                container_name="azureml-blobstore-fake",
                credentials=AccountKeyConfiguration(account_key="fake-account-key"),
            ),
            ARTIFACTS: AzureBlobDatastore(
                name=ARTIFACTS,
                account_name="fakeaccount",
                container_name="azureml",
                credentials=AccountKeyConfiguration(account_key="fake-account-key"),
            ),
        }
        self.client = SimpleNamespace(
            jobs=self._jobs(),
            models=self._models(),
            data=self._data(),
            compute=self._compute(),
            datastores=self._datastores(),
            workspaces=self._workspaces(),
        )
        self.mlflow = self._mlflow()
        self.unreadable_jobs: list[Any] = []  # None (unparseable) or "unsupported" (JobException) in listings
        self.cloud_versions: dict[tuple[str, str], int] = {}  # model version here → the cloud registry's

    def backend(self, settings: Settings) -> AzureMLV2Backend:
        return AzureMLV2Backend(
            settings,
            client=self.client,
            mlflow_client=self.mlflow,
            container_client=self.container_client,
            retry_delay=0.0,
        )

    # -- storage -------------------------------------------------------------------
    def container_client(self, account_url: str, container_name: str, credential: Any = None, **options: Any) -> Any:
        """An autospec ContainerClient on a folder; the artifact store's is a view of the cloud's runs."""
        assert account_url == "https://fakeaccount.blob.core.windows.net", account_url
        assert credential == "fake-account-key"
        assert options["retry_total"] == 0, "the storage client's own retries are off: ours retry (retry.py)"
        assert options["connection_timeout"] > 0 and options["read_timeout"] > 0, options
        self.containers_made += 1
        folder = self.blob_root / container_name
        client = on_folder(create_autospec(ContainerClient, instance=True), folder)
        if container_name == "azureml":
            client.list_blobs.side_effect = lambda name_starts_with=None, **kw: self._artifact_blobs(
                name_starts_with or ""
            )

            def download_artifact(blob: str, offset: int | None = None, length: int | None = None, **kw: Any) -> Any:
                path = self._artifact_path(blob)
                if path is None or not path.is_file():
                    raise not_found(f"blob {blob}")
                return downloader(path.read_bytes()[offset or 0 :])

            client.download_blob.side_effect = download_artifact

        def get_blob_client(blob: str, snapshot: Any = None, *, version_id: Any = None) -> Any:
            return self._blob_client(folder, container_name, blob)

        client.get_blob_client.side_effect = get_blob_client
        return client

    def _artifact_path(self, blob: str) -> Path | None:
        """ExperimentRun/dcid.<job>/user_logs/std_log.txt and …/outputs/<file>, served from the cloud's run."""
        parts = blob.split("/")
        if len(parts) < 3 or parts[0] != "ExperimentRun" or not parts[1].startswith("dcid."):
            return None
        run_id = self.runs.get(parts[1].removeprefix("dcid."))
        if run_id is None:
            return None
        folder = self.cloud.compute.run_dir(run_id)
        rest = "/".join(parts[2:])
        if rest == "user_logs/std_log.txt":
            return folder / "driver.log"
        if rest.startswith("outputs/"):
            return folder / "work" / rest
        return None

    def _artifact_blobs(self, prefix: str) -> list:
        found = []
        for name, run_id in self.runs.items():
            outputs = self.cloud.compute.run_dir(run_id) / "work" / "outputs"
            for rel, full in list_files(outputs) if outputs.is_dir() else []:
                blob = f"ExperimentRun/dcid.{name}/outputs/{rel}"
                if blob.startswith(prefix):
                    found.append(SimpleNamespace(name=blob, size=full.stat().st_size))
        return found

    def _blob_client(self, folder: Path, container_name: str, blob: str) -> Any:
        client = create_autospec(BlobClient, instance=True)
        path = self._artifact_path(blob) if container_name == "azureml" else folder / blob

        def download_blob(offset: int | None = None, length: int | None = None, **kw: Any) -> Any:
            if path is None or not path.exists():
                raise not_found(f"blob {blob}")
            return downloader(path.read_bytes()[offset or 0 :])

        client.download_blob.side_effect = download_blob
        return client

    # -- jobs ----------------------------------------------------------------------
    def _jobs(self) -> Any:
        ops = create_autospec(JobOperations, instance=True)
        ops.create_or_update.side_effect = self._submit
        ops.get.side_effect = self._get_job
        ops.list.side_effect = lambda *, parent_job_name=None, list_view_type=None, **kw: JobListing(
            [self._get_job(name) for name in reversed(self.jobs)] + self.unreadable_jobs  # newest first
        )
        ops.begin_cancel.side_effect = self._cancel
        return ops

    def _submit(self, job: Any, *, description: Any = None, compute: Any = None, tags: Any = None, **kw: Any) -> Any:
        assert isinstance(job, Command), type(job)
        assert Path(str(job.code)) == self.training_dir
        assert isinstance(job.environment, Environment) and job.environment.image
        assert "mlflow" in str(job.environment.conda_file), "the scripts log with MLflow: the environment needs it"
        data = job.inputs["data"]
        assert data.type == "uri_folder" and data.mode == "download", (data.type, data.mode)
        prefix = f"azureml://datastores/{BLOBSTORE}/paths/"
        path = data.path
        if path.startswith("azureml:") and not path.startswith("azureml://"):  # azureml:<asset>:<version>
            _, name, version = path.split(":")
            path = next(d.path for d in self.data_assets[name] if d.version == version)
        assert path.startswith(prefix) and path.endswith("/"), data.path
        self.submitted.append(job)
        if job.name in self.jobs:  # job names are unique in a workspace
            raise ResourceExistsError(message=f"a job named {job.name} already exists")
        datapath = path.removeprefix(prefix).rstrip("/")
        words = shlex.split(job.command)
        assert words[:1] == ["python"] and DATA_INPUT in words, job.command
        data_path, estimators, args = parse_script_arguments(words[2:])
        assert data_path == DATA_INPUT
        source = self.blob_root / self.datastores[BLOBSTORE].container_name / datapath
        self.cloud.upload_data(source, target_path=datapath)  # the input downloaded onto the node
        spec = RunSpec(
            script=words[1],
            experiment=job.experiment_name,
            datapath=datapath,
            compute="cloud",
            estimators=estimators,
            args=args,
            tags={"job_name": job.name},
        )
        self.runs[job.name] = self.cloud.submit_run(spec)
        self.jobs[job.name] = CommandJob(
            name=job.name,
            display_name=job.display_name,
            experiment_name=job.experiment_name,
            tags=dict(job.tags),
            command=job.command,
            compute=job.compute,
            inputs={"data": Input(type="uri_folder", path=path, mode="download")},
            creation_context=SystemData(created_at=datetime.now(UTC)),
        )
        return self._get_job(job.name)

    def _get_job(self, name: str) -> Any:
        """As jobs.get answers: the REST job parsed by the SDK's own Job._from_rest_object, so a `Command`
        (not the CommandJob that was submitted), as the replayed SDK shows (test_v2_replay.py)."""
        if name not in self.jobs:
            raise not_found(f"job {name}")
        entity = self.jobs[name]
        if self.cancel_reads.get(name):
            self.cancel_reads[name] -= 1
            if not self.cancel_reads[name]:
                self.cloud.cancel_run(self.runs[name])
        cancelling = "CancelRequested" if self.cancel_reads.get(name) else None
        status = self.status_override.get(name) or cancelling or V2_STATUS[self.cloud.get_run(self.runs[name]).status]
        rest = CommandJob(
            name=name,
            display_name=entity.display_name,
            experiment_name=entity.experiment_name,
            tags=dict(entity.tags),
            command=entity.command,
            compute=entity.compute,
            inputs=entity.inputs,
            environment="azureml:CliV2AnonymousEnvironment:1",
        )._to_rest_object()
        rest.properties.status = status
        rest.system_data = entity.creation_context._to_rest_object()
        return Job._from_rest_object(rest)

    def _cancel(self, name: str, **kw: Any) -> Any:
        """As Azure: a 202 operation, after which the job reads CancelRequested for a while (two reads here)
        before it is Canceled; the caller asks for no polling (a poller would poll for an hour)."""
        if name not in self.jobs:
            raise not_found(f"job {name}")
        assert kw.get("polling") is False, "begin_cancel's poller would poll on a thread of its own"
        self.cancel_reads[name] = 2
        return create_autospec(LROPoller, instance=True)

    # -- MLflow --------------------------------------------------------------------
    def _mlflow(self) -> Any:
        client = create_autospec(MlflowClient, instance=True)
        client.get_run.side_effect = self._mlflow_run
        client.get_metric_history.side_effect = lambda run_id, key: self._history(run_id).get(key, [])
        return client

    def _history(self, run_id: str) -> dict[str, list[Metric]]:
        """The job's metrics as the workspace's one tracking store shows them through MLflow.

        Azure ML keeps a job's metrics in one MLflow-compatible store whichever SDK logged them
        ("Migrate logging from SDK v1 to SDK v2"): Run.get_context().log() inside a v2 job lands
        there too. MLflow carries numbers only, so a v1 log_list becomes one point per value and
        tables and images (not numbers) are not metrics here.
        """
        if run_id not in self.runs:
            # what MLflow's REST store raises for the tracking server's 404 (rest_utils.RESOURCE_NON_EXISTENT)
            raise MlflowException(f"Run '{run_id}' not found", error_code=RESOURCE_DOES_NOT_EXIST)
        history: dict[str, list[Metric]] = {}
        for key, logged in self.cloud.get_metrics(self.runs[run_id]).items():  # MLflow and v1 calls, together
            values = [v for value in logged for v in (value if isinstance(value, list) else [value])]
            numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
            if numbers:
                history[key] = [Metric(key, v, 1000 * i, i) for i, v in enumerate(numbers)]
        return history

    def _mlflow_run(self, run_id: str) -> Run:
        history = self._history(run_id)
        info = self.cloud.get_run(self.runs[run_id])
        if info.started_at is None:  # the job's MLflow run appears when it starts
            raise MlflowException(f"Run '{run_id}' not found", error_code=RESOURCE_DOES_NOT_EXIST)
        ms = lambda t: int(t * 1000) if t else None  # noqa: E731
        run_info = RunInfo(
            run_id, "0", "fake", V2_STATUS[info.status].upper(), ms(info.started_at), ms(info.finished_at), "active"
        )
        logged = mlflow_files.read_tags(self.cloud.compute.run_dir(self.runs[run_id]))
        logged |= {
            e["name"]: str(e["value"]) for e in self.cloud._metric_events(self.runs[run_id]) if e.get("kind") == "tag"
        }
        tags = [RunTag(k, v) for k, v in logged.items()]
        return Run(run_info, RunData(metrics=[points[-1] for points in history.values()], tags=tags))

    # -- data assets ---------------------------------------------------------------
    def _data(self) -> Any:
        ops = create_autospec(DataOperations, instance=True)

        def create_or_update(data: Data) -> Data:
            assert isinstance(data, Data) and data.type == "uri_folder"
            assert data.path.startswith(f"azureml://datastores/{BLOBSTORE}/paths/")
            versions = self.data_assets.setdefault(data.name, [])
            stored = Data(
                name=data.name, version=str(len(versions) + 1), path=data.path, type=data.type, tags=dict(data.tags)
            )
            versions.append(stored)
            return stored

        def get(name: str, version: str | None = None, label: str | None = None) -> Data:
            assert (version is None) != (label is None), "the SDK wants a version or a label"
            versions = self.data_assets.get(name) or []
            chosen = versions[-1:] if label == "latest" else [d for d in versions if d.version == version]
            if not chosen and label is not None:
                # As _asset_utils._get_latest_version raises a ValidationException (RESOURCE_NOT_FOUND), which
                # DataOperations.get's error handling re-raises as a plain MlException (seen on the replayed SDK).
                try:
                    raise ValidationException(
                        message=f"Asset {name} does not exist in workspace fake.",
                        no_personal_data_message="Asset {asset_name} does not exist in workspace {workspace_name}.",
                        target=ErrorTarget.ASSET,
                        error_category=ErrorCategory.USER_ERROR,
                        error_type=ValidationErrorType.RESOURCE_NOT_FOUND,
                    )
                except ValidationException:
                    raise MlException(message="\n1) Resource was not found.\n", no_personal_data_message="not found")  # noqa: B904
            if not chosen:
                raise not_found(f"data {name}")
            return chosen[0]

        def archive(name: str, version: str | None = None, label: str | None = None, **kw: Any) -> None:
            found = [d for d in self.data_assets.get(name, []) if d.version == version]
            if not found:
                raise not_found(f"data {name}:{version}")
            self.archived_data.add((name, version))

        def listing(name: str | None = None, *, list_view_type: Any = None) -> list[Data]:
            # ListViewType.ACTIVE_ONLY by default, as the SDK: archived versions are left out
            if name is None:
                return [Data(name=n, path=v[-1].path) for n, v in self.data_assets.items()]
            return [d for d in self.data_assets.get(name, []) if (name, d.version) not in self.archived_data]

        ops.create_or_update.side_effect = create_or_update
        ops.get.side_effect = get
        ops.list.side_effect = listing
        ops.archive.side_effect = archive
        return ops

    # -- models --------------------------------------------------------------------
    def _models(self) -> Any:
        ops = create_autospec(ModelOperations, instance=True)
        ops.create_or_update.side_effect = self._register
        ops.get.side_effect = self._get_model
        ops.list.side_effect = self._list_models
        ops.download.side_effect = self._download
        ops.archive.side_effect = lambda name, version=None, label=None, **kw: self._archive(name, version, True)
        ops.restore.side_effect = lambda name, version=None, label=None, **kw: self._archive(name, version, False)
        return ops

    def _list_models(self, name: str | None = None, stage: str | None = None, *, list_view_type: Any = None) -> list:
        """As the SDK: active versions only unless list_view_type says otherwise; `stage` filters."""
        if name is None:
            return [Model(name=n) for n in self.models]
        view = list_view_type or ListViewType.ACTIVE_ONLY
        chosen = []
        for model in self.models.get(name, []):
            archived = (name, model.version) in self.archived_models
            if (view == ListViewType.ACTIVE_ONLY and archived) or (view == ListViewType.ARCHIVED_ONLY and not archived):
                continue
            if stage is None or model.stage == stage:
                chosen.append(model)
        return chosen

    def _archive(self, name: str, version: str | None, archived: bool) -> None:
        """models.archive/restore of one version (the SDK: a GET, then a PUT with is_archived; 404 if missing)."""
        self._get_model(name, version)
        (self.archived_models.add if archived else self.archived_models.discard)((name, str(version)))

    def _register(self, model: Model) -> Model:
        """As Azure does: every call makes a new version, even for a job registered before.

        Without a version the SDK numbers it client-side (_model_operations.py, create_or_update:
        `container.next_version`), so the number is one more than the newest the caller could see. A PUT of
        a version that exists updates its tags and description when its path is the same, and is refused
        with Azure's 400 "Asset paths cannot be updated." otherwise (tests/azure/recordings/README.md).
        """
        assert isinstance(model, Model) and model.type == "custom_model"
        prefix, suffix = "azureml://jobs/", "/outputs/artifacts/paths/outputs/"
        assert model.path.startswith(prefix) and model.path.endswith(suffix), model.path
        job = model.path.removeprefix(prefix).removesuffix(suffix)
        assert all(isinstance(v, str) for v in model.tags.values()), "tags are strings on Azure"
        existing = self.models.setdefault(model.name, [])
        wanted = str(model.version) if model.version else str(1 + max((int(m.version) for m in existing), default=0))
        if not model.version:
            time.sleep(0.05)  # the SDK reads next_version, then PUTs: another registration can come between
        same = [m for m in existing if m.version == wanted]
        if same and same[0].path != model.path:
            raise HttpResponseError(message="(UserError) Asset paths cannot be updated.\nCode: UserError")
        if same:
            same[0].tags, same[0].description = dict(model.tags), model.description
            same[0].stage = model.stage or same[0].stage
            self.archived_models.discard((model.name, wanted))  # the SDK writes is_archived=False back
            self.cloud.registry.update(
                model.name, self.cloud_versions[(model.name, wanted)], description=model.description, tags=model.tags
            )
            return same[0]
        version = self.cloud.registry.register(
            self.cloud.compute.run_dir(self.runs[job]),
            name=model.name,
            tags=dict(model.tags),
            run_id=None,
            data_version=None,
            script_digest=None,
        )
        self.cloud_versions[(model.name, wanted)] = version.version
        stored = Model(
            name=model.name,
            version=wanted,
            path=model.path,
            type=model.type,
            tags=dict(model.tags),
            properties=dict(model.properties),
            creation_context=SystemData(created_at=datetime.now(UTC)),
            stage="Development",  # Azure's stage for a new version (tests/azure/recordings/model_version.json)
        )
        self.models.setdefault(model.name, []).append(stored)
        return stored

    def _get_model(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        found = [m for m in self.models.get(name, []) if m.version == str(version)]
        if not found:
            raise not_found(f"model {name}:{version}")
        return found[0]

    def _download(self, name: str, version: str, download_path: Any = ".") -> None:
        """As the SDK lays it out: <download_path>/<name>/<last segment of the model's path>/…"""
        if not any(m.version == version for m in self.models.get(name, [])):
            raise not_found(f"model {name}:{version}")
        self.cloud.download_model(name, self.cloud_versions[(name, version)], Path(download_path) / name / "outputs")

    # -- compute, datastores, workspace --------------------------------------------
    def _compute(self) -> Any:
        ops = create_autospec(ComputeOperations, instance=True)

        def get(name: str) -> Any:
            if name not in self.computes:
                raise not_found(f"compute {name}")
            return self.computes[name]

        def create(compute: Any) -> Any:
            """A poller that ends as `compute_outcome` says: Succeeded, or Failed (azure-core raises
            HttpResponseError from result() for a failed operation)."""
            assert isinstance(compute, AmlCompute)
            self.created_with = compute
            poller = create_autospec(LROPoller, instance=True)

            def result(timeout: float | None = None) -> Any:
                if self.compute_outcome != "Succeeded":
                    raise HttpResponseError(
                        message=f"(ResourceOperationFailure) {compute.name}: {self.compute_outcome}"
                    )
                self.computes[compute.name] = compute
                return compute

            poller.result.side_effect = result
            poller.done.side_effect = lambda: compute.name in self.computes
            return poller

        ops.get.side_effect = get
        ops.begin_create_or_update.side_effect = create
        return ops

    def _datastores(self) -> Any:
        ops = create_autospec(DatastoreOperations, instance=True)
        ops.get_default.side_effect = lambda *, include_secrets=False: self._datastore(BLOBSTORE, include_secrets)
        ops.get.side_effect = lambda name, *, include_secrets=False: self._datastore(name, include_secrets)
        return ops

    def _datastore(self, name: str, include_secrets: bool) -> AzureBlobDatastore:
        if name not in self.datastores:
            raise not_found(f"datastore {name}")
        real = self.datastores[name]
        credentials = real.credentials if include_secrets else AccountKeyConfiguration(account_key=None)
        return AzureBlobDatastore(
            name=real.name, account_name=real.account_name, container_name=real.container_name, credentials=credentials
        )

    def _workspaces(self) -> Any:
        ops = create_autospec(WorkspaceOperations, instance=True)
        ops.get.side_effect = lambda name=None, **kw: Workspace(name=name or "fake")
        return ops

    def remove_blobs(self) -> None:
        shutil.rmtree(self.blob_root, ignore_errors=True)
