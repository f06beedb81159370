"""A stateful stand-in for an Azure ML workspace, built from autospecs of the real azureml-core classes.

Every object the backend touches is `create_autospec` of the installed SDK class, so a
call with a wrong method name or argument fails here as it would on Azure. Behind
them, blobs live in a folder, runs really execute (through a LocalBackend playing the
cloud's compute) and models are kept in that backend's registry. Configuration
objects (ScriptRunConfig, RunConfiguration, DataReferenceConfiguration,
CondaDependencies, AmlCompute.provisioning_configuration) are the real classes.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import create_autospec

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient
from azureml._restclient.exceptions import ServiceException
from azureml.core import Experiment, Model, RunConfiguration, ScriptRunConfig, Workspace
from azureml.core.compute import AmlCompute, ComputeTarget
from azureml.core.compute_target import ComputeTargetException
from azureml.core.conda_dependencies import CondaDependencies
from azureml.core.run import Run
from azureml.core.runconfig import DataReferenceConfiguration, DockerConfiguration
from azureml.data.azure_storage_datastore import AzureBlobDatastore
from azureml.exceptions import WebserviceException

from amllib.backends.azure.v1 import AzureMLBackend
from amllib.backends.azure.v1_sdk import Sdk
from amllib.backends.base import RunSpec, RunStatus, parse_script_arguments
from amllib.backends.local import LocalBackend
from amllib.errors import RunNotFound
from amllib.files import list_files
from amllib.settings import Settings
from tests.azure.fake_blobs import on_folder

SDK_STATUS = {
    RunStatus.QUEUED: "Queued",
    RunStatus.RUNNING: "Running",
    RunStatus.COMPLETED: "Completed",
    RunStatus.FAILED: "Failed",
    RunStatus.CANCELED: "Canceled",
}


def service_error(status: int, message: str) -> Any:
    """What run history's client raises, in the shape ServiceException copies (msrest ErrorResponseException)."""
    return SimpleNamespace(message=message, response=SimpleNamespace(status_code=status, headers={}), error=None)


class FakeAzure:
    """One fake workspace: its datastore, experiments, runs, models and compute targets."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.container = root / "blob-container"
        self.container.mkdir(parents=True)
        self.cloud = LocalBackend(settings.model_copy(update={"home": root / "cloud", "run_local": False}))
        self.computes: dict[str, Any] = {}
        self.properties: dict[tuple[str, int], dict[str, str]] = {}
        self.model_runs: dict[tuple[str, int], str] = {}
        self.arguments: dict[str, list[str]] = {}
        self.status_override: dict[str, str] = {}
        self.submitted: list[ScriptRunConfig] = []
        self.workspace = self._workspace()
        self.sdk = self._sdk()

    def backend(self, settings: Settings) -> AzureMLBackend:
        return AzureMLBackend(settings, workspace=self.workspace, sdk=self.sdk, retry_delay=0.0)

    # -- workspace and datastore ------------------------------------------------
    def _workspace(self) -> Any:
        workspace = create_autospec(Workspace, instance=True)
        self.datastore = create_autospec(AzureBlobDatastore, instance=True)
        self.datastore.name = "workspaceblobstore"
        self.datastore.container_name = "azureml-blobstore"
        self.datastore.upload.side_effect = self._upload
        self.datastore.blob_service = create_autospec(BlobServiceClient, instance=True)
        self.datastore.blob_service.get_container_client.side_effect = self._container_client
        self.datastore.blob_service.get_blob_client.side_effect = self._blob_client
        workspace.get_default_datastore.side_effect = lambda: self.datastore
        workspace.get_run.side_effect = self._get_run
        return workspace

    def _upload(
        self, src_dir: str, target_path: str | None = None, overwrite: bool = False, show_progress: bool = True
    ) -> None:
        # As azureml-core's AzureBlobDatastore.upload (azure_storage_datastore.py, upload/_start_upload_task):
        # blobs are written one by one and nothing an older upload left under the path is ever deleted.
        target = self.container / (target_path or "")
        for rel, full in list_files(Path(src_dir)):
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(full, target / rel)

    def _container_client(self, container: str) -> Any:
        return on_folder(create_autospec(ContainerClient, instance=True), self.container)

    def _blob_client(self, container: str, blob: str, snapshot: Any = None) -> Any:
        client = create_autospec(BlobClient, instance=True)
        path = self.container / blob

        def upload_blob(
            data: Any, blob_type: Any = None, length: Any = None, metadata: Any = None, **kwargs: Any
        ) -> dict:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data.encode() if isinstance(data, str) else data)
            return {}

        def download_blob(offset: Any = None, length: Any = None, **kwargs: Any) -> Any:
            if not path.exists():
                raise ResourceNotFoundError(f"The specified blob does not exist: {blob}")  # as the real client
            return SimpleNamespace(readall=path.read_bytes)

        client.upload_blob.side_effect = upload_blob
        client.download_blob.side_effect = download_blob
        return client

    # -- the SDK's classes -------------------------------------------------------
    def _sdk(self) -> Sdk:
        experiment_cls = create_autospec(Experiment)
        experiment_cls.side_effect = lambda workspace, name, **kwargs: self._experiment(name)
        experiment_cls.list.side_effect = self._experiment_list
        model_cls = create_autospec(Model)
        model_cls.side_effect = self._model_lookup
        model_cls.list.side_effect = self._model_list
        compute_cls = create_autospec(ComputeTarget)
        compute_cls.side_effect = self._compute_lookup
        compute_cls.create.side_effect = self._compute_create
        workspace_cls = create_autospec(Workspace)
        workspace_cls.get.side_effect = lambda name, **kwargs: self.workspace
        return Sdk(
            Workspace=workspace_cls,
            Experiment=experiment_cls,
            Model=model_cls,
            ComputeTarget=compute_cls,
            AmlCompute=AmlCompute,
            ScriptRunConfig=ScriptRunConfig,
            RunConfiguration=RunConfiguration,
            DataReferenceConfiguration=DataReferenceConfiguration,
            CondaDependencies=CondaDependencies,
            ComputeTargetException=ComputeTargetException,
            DockerConfiguration=DockerConfiguration,
        )

    def add_compute(self, name: str, kind: type = AmlCompute) -> Any:
        target = create_autospec(kind, instance=True)
        target.name = name
        self.computes[name] = target
        return target

    def _compute_lookup(self, workspace: Any, name: str) -> Any:
        if name not in self.computes:
            raise ComputeTargetException(f"ComputeTargetNotFound: {name}")
        return self.computes[name]

    def _compute_create(self, workspace: Any, name: str, provisioning_configuration: Any) -> Any:
        self.created_with = provisioning_configuration
        return self.add_compute(name)

    def _experiment(self, name: str) -> Any:
        experiment = create_autospec(Experiment, instance=True)
        experiment.name = name
        experiment.submit.side_effect = lambda config, tags=None, **kwargs: self._submit(name, config, tags or {})
        experiment.get_runs.side_effect = lambda type=None, tags=None, properties=None, include_children=False: [
            self._get_run(r) for r in (self._runs_tagged(name, tags) if tags else self._runs_newest_first(name))
        ]
        return experiment

    def _runs_newest_first(self, experiment: str) -> list[str]:
        return [r.run_id for r in reversed(self.cloud.list_runs()) if r.experiment == experiment]

    def _experiment_list(self, workspace: Any, experiment_name: str | None = None, **kwargs: Any) -> list:
        names = sorted({r.experiment for r in self.cloud.list_runs()})
        return [self._experiment(n) for n in names if experiment_name in (None, n)]

    def _runs_tagged(self, experiment: str, tags: dict[str, str]) -> list[str]:
        found = None
        for tag, value in tags.items():
            ids = set(self.cloud.find_runs(experiment, tag=tag, value=value))
            found = ids if found is None else found & ids
        return sorted(found or [])

    def _submit(self, experiment: str, config: ScriptRunConfig, tags: dict[str, str]) -> Any:
        assert isinstance(config, ScriptRunConfig)
        self.submitted.append(config)
        reference = next(iter(config.run_config.data_references.values()))
        datapath = reference.path_on_data_store
        self.cloud.upload_data(self.container / datapath, target_path=datapath)  # the download to /tmp
        _, estimators, args = parse_script_arguments(list(config.arguments))
        spec = RunSpec(
            script=config.script,
            experiment=experiment,
            datapath=datapath,
            compute="cloud",
            estimators=estimators,
            args=args,
            tags=dict(tags),
        )
        run_id = self.cloud.submit_run(spec)
        self.arguments[run_id] = list(config.arguments)
        return self._get_run(run_id)

    def _get_run(self, run_id: str) -> Any:
        try:
            info = self.cloud.get_run(run_id)
        except RunNotFound:  # run history answers 404, which Run.get raises as a ServiceException
            raise ServiceException(service_error(404, f"RunNotFound: {run_id}")) from None
        record = self.cloud.compute.read(run_id)[0]
        run = create_autospec(Run, instance=True)
        run.id = run_id
        run.experiment = SimpleNamespace(name=info.experiment)
        run.get_status.side_effect = lambda: self.status_override.get(
            run_id, SDK_STATUS[self.cloud.get_run(run_id).status]
        )
        run.get_details.side_effect = lambda: self._details(run_id)
        run.get_tags.side_effect = lambda: {**record.get("tags", {}), **self.cloud.get_run(run_id).tags}
        run.get_metrics.side_effect = lambda name=None, recursive=False, run_type=None, populate=False: {
            k: v[0] if len(v) == 1 else v for k, v in self.cloud.get_metrics(run_id).items()
        }
        run.get_file_names.side_effect = lambda: [f"outputs/{f}" for f in self.cloud.list_run_outputs(run_id)]
        # azureml-core builds it from the workspace's portal address when it reads the run
        run.get_portal_url.side_effect = lambda: (
            f"https://ml.azure.com/runs/{run_id}?wsid=/subscriptions/sub/resourcegroups/rg/workspaces/ws"
        )
        run.get_all_logs.side_effect = lambda destination=None: self._logs(run_id, Path(destination))
        run.download_file.side_effect = lambda name, output_file_path=None, _validate_checksum=False: (
            self._download_artifact(run_id, name, Path(output_file_path or Path(name).name))
        )
        run.cancel.side_effect = lambda: self.cloud.cancel_run(run_id)
        run.register_model.side_effect = lambda model_name, model_path=None, tags=None, properties=None, **kw: (
            self._register(run_id, model_name, model_path, tags or {}, properties or {})
        )
        return run

    def _details(self, run_id: str) -> dict:
        info = self.cloud.get_run(run_id)
        iso = lambda t: datetime.fromtimestamp(t, UTC).isoformat() if t else None  # noqa: E731
        details = {
            "runId": run_id,
            "status": SDK_STATUS[info.status],
            "startTimeUtc": iso(info.started_at),
            "endTimeUtc": iso(info.finished_at),
            "runDefinition": {"script": info.script, "arguments": self.arguments.get(run_id, [])},
        }
        if info.status == RunStatus.FAILED:
            details["error"] = {"error": {"code": "UserError", "message": info.error}}
        return details

    def _download_artifact(self, run_id: str, name: str, target: Path) -> None:
        """As Run.download_file: the artifact's bytes to output_file_path (its folder must exist)."""
        source = self.cloud.compute.run_dir(run_id) / "work" / name
        if not source.is_file():
            raise ServiceException(service_error(404, f"ArtifactNotFound: {name}"))
        target.write_bytes(source.read_bytes())

    def _logs(self, run_id: str, destination: Path) -> list[str]:
        target = destination / "user_logs" / "std_log.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.cloud.get_log(run_id))
        return [str(target)]

    # -- models ------------------------------------------------------------------
    def _register(self, run_id: str, name: str, model_path: str, tags: dict, properties: dict) -> Any:
        """As Azure does: every call makes a new version, even for a run registered before."""
        assert model_path == "outputs/"
        version = self.cloud.registry.register(
            self.cloud.compute.run_dir(run_id),
            name=name,
            tags={k: str(v) for k, v in tags.items()},
            run_id=None,
            data_version=None,
            script_digest=None,
        )
        self.properties[(name, version.version)] = dict(properties)
        self.model_runs[(name, version.version)] = run_id
        return self._model(name, version.version)

    def _model(self, name: str, version: int) -> Any:
        found = next((v for v in self.cloud.list_model_versions(name) if v.version == version), None)
        if found is None:
            raise WebserviceException(f"ModelNotFound: Model with name {name} and version {version} not found")
        model = create_autospec(Model, instance=True)
        model.name, model.version, model.run_id = name, version, self.model_runs.get((name, version))
        model.tags = {k: str(v) for k, v in found.tags.items()}
        model.properties = self.properties.get((name, version), {})
        model.created_time = datetime.fromtimestamp(found.created_at, UTC)

        def download(target_dir: str = ".", exist_ok: bool = False, exists_ok: Any = None) -> str:
            self.cloud.download_model(name, version, Path(target_dir) / "outputs")
            return str(Path(target_dir) / "outputs")

        model.download.side_effect = download
        model.description = found.description

        def update(tags: Any = None, description: Any = None, **kw: Any) -> None:
            """An in-place PATCH: only what is given (azureml-core sends no empty tag set)."""
            changed = self.cloud.registry.update(name, version, description=description, tags=tags or None)
            model.tags = {k: str(v) for k, v in changed.tags.items()}
            model.description = changed.description

        model.update.side_effect = update
        return model

    def _model_lookup(
        self,
        workspace: Any,
        name: str | None = None,
        id: str | None = None,
        tags: Any = None,
        properties: Any = None,
        version: int | None = None,
        **kwargs: Any,
    ) -> Any:
        versions = self.cloud.list_model_versions(name)
        if not versions:
            raise WebserviceException(f"ModelNotFound: Model with name {name} not found in provided workspace")
        return self._model(name, version or versions[-1].version)

    def _model_list(
        self, workspace: Any, name: str | None = None, tags: Any = None, run_id: str | None = None, **kwargs: Any
    ) -> list:
        names = [name] if name else self.cloud.list_models()
        models = [self._model(n, v.version) for n in names for v in self.cloud.list_model_versions(n)]
        for tag in tags or []:
            models = [m for m in models if tag in m.tags]
        if run_id is not None:
            models = [m for m in models if m.run_id == run_id]
        return models
