"""The azureml-v2 backend on the real MLClient, answered from recorded Azure ML REST bodies (tests/azure/replay.py).

What this proves beyond the autospec fakes: the SDK's real request building, pipeline, entity parsing
(a job comes back as a `Command`; an account-key datastore's secret as a 1-hour SAS) and error
envelopes (a 404 `UserError` becomes ResourceNotFoundError) meet our backend as they would on Azure.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from amllib.backends.azure.v2 import AzureMLV2Backend
from amllib.backends.base import AliasBook, RunSpec, RunStatus
from amllib.errors import InvalidInput, RunNotFound
from tests.azure.azurite import ACCOUNT, KEY, Azurite
from tests.azure.replay import ARM, Workspace, replay_settings, replayed_backend


class Containers:
    """Records the storage clients the backend builds (address, container, credential)."""

    def __init__(self) -> None:
        self.made: list[tuple[str, str, Any]] = []

    def __call__(self, account_url: str, container_name: str, credential: Any = None, **options: Any) -> Any:
        self.made.append((account_url, container_name, credential))
        return _EmptyContainer()


class _EmptyContainer:
    def list_blobs(self, name_starts_with: str | None = None, **kwargs: Any) -> list:
        return []

    def download_blob(self, name: str, **kwargs: Any) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        raise ResourceNotFoundError(message=f"The specified blob does not exist: {name}")


@pytest.fixture
def workspace() -> Workspace:
    return Workspace()


@pytest.fixture
def containers() -> Containers:
    return Containers()


@pytest.fixture
def backend(tmp_path: Path, workspace: Workspace, containers: Containers) -> AzureMLV2Backend:
    settings = replay_settings(tmp_path)
    return replayed_backend(settings, workspace, container_client=containers)


def test_a_job_read_through_the_real_sdk_is_a_command_in_our_terms(
    backend: AzureMLV2Backend, workspace: Workspace
) -> None:
    tags = {"azml_script": "scikit-titanic.py", "azml_datapath": "titanic", "azml_estimators": "5", "job_id": "run_1"}
    workspace.add_job("azml-run_1", status="Preparing", tags=tags)
    job = backend.client.jobs.get("azml-run_1")
    assert type(job).__name__ == "Command"  # not CommandJob, which the SDK does not return from jobs.get
    info = backend.get_run("azml-run_1")
    assert info.status == RunStatus.PREPARING
    assert (info.experiment, info.compute, info.script) == ("mfe-test1-dataset", "testCompute", "scikit-titanic.py")
    assert (info.datapath, info.estimators) == ("titanic", 5)
    assert info.created_at > 1.7e9  # systemData.createdAt parsed
    assert info.studio_url.startswith("https://ml.azure.com/runs/")  # the job's services.Studio endpoint
    assert ("GET", f"{ARM}/jobs/azml-run_1") in workspace.requests


def test_an_unknown_job_is_run_not_found_from_the_404_envelope(backend: AzureMLV2Backend) -> None:
    with pytest.raises(RunNotFound, match="azml-nope"):
        backend.get_run("azml-nope")
    assert backend.find_runs("mfe-test1-dataset", tag="job_id", value="nope") == []


def test_a_datastore_secret_comes_back_as_a_sas_and_the_storage_client_uses_it(
    backend: AzureMLV2Backend, containers: Containers, workspace: Workspace
) -> None:
    datastore, _ = backend._container()
    assert type(datastore.credentials).__name__ == "SasTokenConfiguration"  # listSecrets with expirableSecret
    account, container, credential = containers.made[-1]
    assert account == "https://Sanitized.blob.core.windows.net"
    assert container == "azureml-blobstore-8e7dad76-df37-472b-b882-0c1c58adfcf9"
    assert isinstance(credential, str) and credential.startswith("?sv=") and "sig=" in credential
    assert ("POST", f"{ARM}/datastores/workspaceblobstore/listSecrets") in workspace.requests


def test_an_existing_cluster_is_reused_and_a_name_azure_refuses_is_refused_up_front(
    backend: AzureMLV2Backend, workspace: Workspace
) -> None:
    workspace.computes.add("cpu-cluster")
    assert backend.ensure_compute("cpu-cluster") == "cpu-cluster"
    asked = len(workspace.requests)
    for bad in ("gpu_cluster", "x", "1cluster", "a" * 17):
        with pytest.raises(InvalidInput, match="2 to 16"):
            backend.ensure_compute(bad)
    assert len(workspace.requests) == asked  # refused before any call


def test_model_versions_parse_from_the_recorded_body_and_an_unknown_model_has_none(
    backend: AzureMLV2Backend, workspace: Workspace
) -> None:
    workspace.add_model_version(
        "titanic", 1, tags={"accuracy": "0.81"}, properties={"run_id": "azml-run_1", "data_version": "sha256:ab"}
    )
    workspace.add_model_version("titanic", 2, tags={"accuracy": "0.84"}, properties={"run_id": "azml-run_2"})
    versions = backend.list_model_versions("titanic")
    assert [(v.version, v.tags["accuracy"], v.run_id) for v in versions] == [
        (1, 0.81, "azml-run_1"),
        (2, 0.84, "azml-run_2"),
    ]
    assert versions[0].data_version == "sha256:ab" and versions[0].created_at > 1.7e9
    assert backend.resolve_version("titanic", best_by="accuracy").version == 2
    assert backend.list_model_versions("unknown") == []


class Blobs(Containers):
    """A storage container that keeps uploaded blobs' sizes (the REST side is the replayed SDK's)."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: dict[str, int] = {}

    def __call__(self, account_url: str, container_name: str, credential: Any = None, **options: Any) -> Any:
        super().__call__(account_url, container_name, credential)
        return self

    def upload_blob(self, name: str, data: Any, **kwargs: Any) -> None:
        self.sizes[name] = len(data.read())

    def list_blobs(self, name_starts_with: str | None = None, **kwargs: Any) -> list:
        from types import SimpleNamespace

        return [SimpleNamespace(name=n, size=s) for n, s in self.sizes.items() if n.startswith(name_starts_with or "")]


def test_data_versions_through_the_real_sdk(tmp_path: Path, workspace: Workspace, data_dir: Path) -> None:
    """A path never registered: the SDK raises a plain MlException (a ValidationException behind it), no 404."""
    settings = replay_settings(tmp_path)
    blobs = Blobs()
    backend = replayed_backend(settings, workspace, container_client=blobs)
    assert backend.current_data("titanic-data") is None
    first = backend.upload_data(data_dir, target_path="titanic-data")
    assert backend.current_data("titanic-data") == first
    second = backend.upload_data(data_dir, target_path="titanic-data")
    assert backend.current_data("titanic-data") == second
    versions = workspace.data["titanic-data"]
    assert [v["name"] for v in versions] == ["1", "2"]  # versions numbered by the SDK from the container
    uris = [v["properties"]["dataUri"] for v in versions]
    assert uris[0] != uris[1] and all("/paths/titanic-data/" in u for u in uris)  # each its own prefix
    assert ("PUT", f"{ARM}/data/titanic-data/versions/2") in workspace.requests


# -- job create and model create: the SDK's own code upload goes to Azurite --------------------------------


def code_upload_sas(azurite: Azurite) -> str:
    """A container SAS on the emulator, as startPendingUpload hands out one on the workspace's storage."""
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerClient, ContainerSasPermissions, generate_container_sas

    ContainerClient(azurite.url, "code-upload", credential=KEY).create_container()
    sas = generate_container_sas(
        ACCOUNT,
        "code-upload",
        account_key=KEY,
        permission=ContainerSasPermissions(read=True, create=True, write=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    return f"{azurite.url}/code-upload?{sas}"


class AzuriteContainers(Containers):
    """The datastores' containers on the emulator: the one redirect is the account's address and key."""

    def __init__(self, azurite: Azurite) -> None:
        super().__init__()
        self.azurite = azurite

    def __call__(self, account_url: str, container_name: str, credential: Any = None, **options: Any) -> Any:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import ContainerClient

        self.made.append((account_url, container_name, credential))
        client = ContainerClient(self.azurite.url, container_name, credential=KEY)
        with contextlib.suppress(ResourceExistsError):
            client.create_container()
        return client


@pytest.fixture
def submitted(
    tmp_path: Path, workspace: Workspace, azurite: Azurite, data_dir: Path
) -> tuple[AzureMLV2Backend, AzuriteContainers]:
    settings = replay_settings(tmp_path)
    containers = AzuriteContainers(azurite)
    backend = replayed_backend(settings, workspace, container_client=containers)
    workspace.upload_sas = code_upload_sas(azurite)
    workspace.computes.add("cpu-cluster")
    backend.upload_data(data_dir, target_path="titanic-data")
    return backend, containers


def run_spec(**kwargs: Any) -> RunSpec:
    values = {
        "script": "mlflow_logging.py",
        "experiment": "titanic",
        "datapath": "titanic-data",
        "compute": "cpu-cluster",
        "estimators": 5,
        "tags": {"job_id": "run_1"},
    }
    return RunSpec(**{**values, **kwargs})


def test_a_submit_uploads_the_code_with_the_sdk_and_creates_the_command_job(
    submitted: tuple[AzureMLV2Backend, AzuriteContainers], workspace: Workspace, azurite: Azurite
) -> None:
    backend, _ = submitted
    run_id = backend.submit_run(run_spec())
    assert run_id == "azml-run_1"
    sent = workspace.requests_bodies[run_id]["properties"]
    assert sent["jobType"] == "Command" and sent["experimentName"] == "titanic"
    assert sent["command"].startswith("python mlflow_logging.py ") and "${{inputs.data}}" in sent["command"]
    data_input = sent["inputs"]["data"]  # the SDK resolved azureml:titanic-data:1 to the asset version's ARM id
    assert data_input["uri"] == f"{ARM}/data/titanic-data/versions/1" and data_input["mode"] == "Download"
    assert sent["tags"]["job_id"] == "run_1" and sent["tags"]["azml_estimators"] == "5"
    assert "/codes/" in sent["codeId"] and "/environments/" in sent["environmentId"]
    # the SDK uploaded the training folder itself, through the SAS the workspace gave it
    from azure.storage.blob import ContainerClient

    uploaded = {b.name for b in ContainerClient(azurite.url, "code-upload", credential=KEY).list_blobs()}
    assert "mlflow_logging.py" in {name.rsplit("/", 1)[-1] for name in uploaded}, uploaded
    info = backend.get_run(run_id)
    assert info.status == RunStatus.QUEUED and info.estimators == 5 and info.datapath == "titanic-data"
    # the job holds its data version (data_versions): a lease naming it beside the data
    leases = [b.name for b in backend._container()[1].list_blobs(name_starts_with=".aml-data-leases/titanic-data/")]
    assert len(leases) == 1 and leases[0].endswith("/azml-run_1")
    # a submit retried after its answer was lost meets the job it made (Azure refuses the name): it is this one
    assert backend.submit_run(run_spec()) == run_id
    assert workspace.requests.count(("PUT", f"{ARM}/jobs/{run_id}")) == 2


def test_an_unknown_compute_is_azures_400_as_invalid_input(
    submitted: tuple[AzureMLV2Backend, AzuriteContainers], workspace: Workspace
) -> None:
    backend, _ = submitted
    with pytest.raises(InvalidInput, match="Unknown compute target 'gpu-cluster'"):
        backend.submit_run(run_spec(compute="gpu-cluster"))
    assert "azml-run_1" not in workspace.jobs


def test_a_model_from_a_job_with_no_artifacts_is_refused_then_registered_once_they_are_there(
    submitted: tuple[AzureMLV2Backend, AzuriteContainers], workspace: Workspace
) -> None:
    backend, _ = submitted
    run_id = backend.submit_run(run_spec())
    workspace.jobs[run_id]["properties"]["status"] = "Completed"
    artifacts = backend._container("workspaceartifactstore")[1]
    artifacts.upload_blob(f"ExperimentRun/dcid.{run_id}/outputs/model.pkl", b"model")  # Azure has not indexed it
    with pytest.raises(InvalidInput, match="No artifacts matching outputs found from Job"):
        backend.register_model(run_id=run_id, model_name="titanic", tags={"accuracy": 0.8})
    assert "titanic" not in workspace.models
    workspace.job_outputs.add(run_id)
    made = backend.register_model(run_id=run_id, model_name="titanic", tags={"accuracy": 0.8})
    assert (made.version, made.run_id, made.tags["accuracy"]) == (1, run_id, 0.8)
    again = backend.register_model(run_id=run_id, model_name="titanic", tags={"accuracy": 0.8})
    assert again.version == 1 and len(workspace.models["titanic"]) == 1  # once per run


def test_stage_and_archive_follow_the_alias_book_through_the_real_sdk(
    backend: AzureMLV2Backend, workspace: Workspace
) -> None:
    """The book stays the truth; Azure's own marks follow it for the studio and `az ml` (issue 28)."""
    for version in (1, 2, 3):
        workspace.add_model_version("titanic", version, tags={"accuracy": "0.8"}, properties={})
    book = AliasBook(aliases={"production": {"version": 2}, "staging": {"version": 3}}, archived=[1])
    backend.mirror_aliases("titanic", book, {1, 2, 3})
    stored = {int(v["name"]): v["properties"] for v in workspace.models["titanic"]}
    assert [(stored[v]["stage"], stored[v]["isArchived"]) for v in (1, 2, 3)] == [
        ("Development", True),
        ("Production", False),
        ("Staging", False),
    ]
    # an archived version stays listed (and so resolvable by number) here, as the book decides what it means
    assert [v.version for v in backend.list_model_versions("titanic")] == [1, 2, 3]
    assert [m.version for m in backend.client.models.list(name="titanic")] == ["3", "2"]  # Azure's own view

    workspace.requests.clear()
    backend.mirror_aliases("titanic", AliasBook(aliases={"production": {"version": 3}}, archived=[]), {1, 2, 3})
    assert [(stored[v]["stage"], stored[v]["isArchived"]) for v in (1, 2, 3)] == [
        ("Development", False),
        ("Development", False),  # held production, holds nothing now
        ("Production", False),
    ]
    puts = [path for method, path in workspace.requests if method == "PUT"]
    assert sorted(puts) == sorted(f"{ARM}/models/titanic/versions/{v}" for v in (1, 2, 3))  # one write each
    workspace.requests.clear()
    backend.mirror_aliases("titanic", AliasBook(aliases={"production": {"version": 3}}, archived=[]), {1, 2, 3})
    assert not [method for method, _ in workspace.requests if method == "PUT"]  # already so: nothing written
