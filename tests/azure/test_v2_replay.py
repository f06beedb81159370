"""The azureml-v2 backend on the real MLClient, answered from recorded Azure ML REST bodies (tests/azure/replay.py).

What this proves beyond the autospec fakes: the SDK's real request building, pipeline, entity parsing
(a job comes back as a `Command`; an account-key datastore's secret as a 1-hour SAS) and error
envelopes (a 404 `UserError` becomes ResourceNotFoundError) meet our backend as they would on Azure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from amllib.backends.azure.v2 import AzureMLV2Backend
from amllib.backends.base import RunStatus
from amllib.errors import InvalidInput, RunNotFound
from tests.azure.replay import ARM, Workspace, ml_client
from tests.conftest import make_settings


class Containers:
    """Records the storage clients the backend builds (address, container, credential)."""

    def __init__(self) -> None:
        self.made: list[tuple[str, str, Any]] = []

    def __call__(self, account_url: str, container_name: str, credential: Any = None) -> Any:
        self.made.append((account_url, container_name, credential))
        return _EmptyContainer()


class _EmptyContainer:
    def list_blobs(self, name_starts_with: str | None = None, **kwargs: Any) -> list:
        return []


@pytest.fixture
def workspace() -> Workspace:
    return Workspace()


@pytest.fixture
def containers() -> Containers:
    return Containers()


@pytest.fixture
def backend(tmp_path: Path, workspace: Workspace, containers: Containers) -> AzureMLV2Backend:
    settings = make_settings(tmp_path / "aml", backend="azureml-v2", subid="sub", resgrp="rg", workspace="ws")
    return AzureMLV2Backend(settings, client=ml_client(workspace), container_client=containers, retry_delay=0.0)


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

    def __call__(self, account_url: str, container_name: str, credential: Any = None) -> Any:
        super().__call__(account_url, container_name, credential)
        return self

    def upload_blob(self, name: str, data: Any, **kwargs: Any) -> None:
        self.sizes[name] = len(data.read())

    def list_blobs(self, name_starts_with: str | None = None, **kwargs: Any) -> list:
        from types import SimpleNamespace

        return [SimpleNamespace(name=n, size=s) for n, s in self.sizes.items() if n.startswith(name_starts_with or "")]


def test_data_versions_through_the_real_sdk(tmp_path: Path, workspace: Workspace, data_dir: Path) -> None:
    """A path never registered: the SDK raises a plain MlException (a ValidationException behind it), no 404."""
    settings = make_settings(tmp_path / "aml", backend="azureml-v2", subid="sub", resgrp="rg", workspace="ws")
    blobs = Blobs()
    backend = AzureMLV2Backend(settings, client=ml_client(workspace), container_client=blobs, retry_delay=0.0)
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
