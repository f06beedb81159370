"""Both Azure backends' datastore uploads, for real, into Azurite: v1's SDK upload(), v2's storage client.

Azurite (the Azure Storage emulator, installed by test.sh from npm) runs on 127.0.0.1
for these tests only. The datastore is a real AzureBlobDatastore with the emulator's
well-known devstoreaccount1 account; only the workspace around it is an autospec.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import time
from pathlib import Path
from typing import Any
from unittest.mock import ANY, create_autospec, patch

import pytest
from azure.ai.ml.entities import AccountKeyConfiguration
from azure.ai.ml.entities import AzureBlobDatastore as V2BlobDatastore
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContainerClient
from azureml.core import Workspace
from azureml.core.authentication import ServicePrincipalAuthentication
from azureml.data.azure_storage_datastore import AzureBlobDatastore

from amllib.backends.azure.v1 import AzureMLBackend
from amllib.backends.azure.v2 import AzureMLV2Backend
from amllib.backends.base import ModelVersion
from amllib.digest import tree_digest
from amllib.errors import BackendUnavailable
from tests.azure.azurite import ACCOUNT, CONTAINER, KEY, Azurite
from tests.azure.fake_aml import FakeAzure
from tests.azure.fake_aml_v2 import BLOBSTORE, FakeAzureV2
from tests.conftest import make_settings


def blob_datastore(azurite: Azurite, *, retries: int = 3) -> AzureBlobDatastore:
    offline_auth = ServicePrincipalAuthentication(
        tenant_id="t", service_principal_id="c", service_principal_password="unused"
    )  # never used here
    workspace = Workspace(
        "00000000-0000-0000-0000-000000000000", "rg", "ws", auth=offline_auth, _disable_service_check=True
    )
    datastore = AzureBlobDatastore(
        workspace,
        "workspaceblobstore",
        CONTAINER,
        ACCOUNT,
        account_key=KEY,
        protocol="http",
        endpoint="core.windows.net",
    )
    datastore.blob_service = BlobServiceClient(
        account_url=azurite.url,
        credential={"account_name": ACCOUNT, "account_key": KEY},
        retry_total=retries,
        retry_backoff_factor=0.1,
        connection_timeout=2,
        read_timeout=5,
    )
    return datastore


def backend_over(datastore: AzureBlobDatastore, tmp_path: Path) -> AzureMLBackend:
    settings = make_settings(tmp_path / "aml", backend="azureml")
    fake = FakeAzure(tmp_path / "fake", settings)
    workspace = create_autospec(Workspace, instance=True)
    workspace.get_default_datastore.return_value = datastore
    return AzureMLBackend(settings, workspace=workspace, sdk=fake.sdk, retry_delay=0.0)


def test_sdk_upload_lands_whole_in_blob_storage(azurite: Azurite, tmp_path: Path, data_dir: Path) -> None:
    datastore = blob_datastore(azurite)
    datastore.blob_service.create_container(CONTAINER)
    (data_dir / "sub" / "big.bin").write_bytes(bytes(range(256)) * 4096)
    backend = backend_over(datastore, tmp_path)

    data = backend.upload_data(data_dir, target_path="titanic-data")
    assert data.digest == tree_digest(data_dir).digest and data.files == 3
    assert backend.current_data("titanic-data") == data
    first = v1_prefix(datastore)
    back = tmp_path / "downloaded"
    assert datastore.download(str(back), prefix=first + "/", show_progress=False) == 3
    assert tree_digest(back / first).digest == data.digest

    # The SDK's upload(overwrite=True) never deletes old blobs; each upload has its own prefix instead.
    (data_dir / "sub" / "big.bin").unlink()
    smaller = backend.upload_data(data_dir, target_path="titanic-data")
    second = v1_prefix(datastore)
    assert second != first and backend.current_data("titanic-data") == smaller
    assert datastore.download(str(tmp_path / "again"), prefix=first + "/", show_progress=False) == 3  # untouched
    assert datastore.download(str(tmp_path / "new"), prefix=second + "/", show_progress=False) == 2
    assert tree_digest(tmp_path / "new" / second).digest == smaller.digest


def v1_prefix(datastore: Any) -> str:
    """Where the last upload to titanic-data landed, from the version record beside the data."""
    record = datastore.blob_service.get_blob_client(CONTAINER, ".aml-data-versions/titanic-data.json")
    return json.loads(record.download_blob().readall())["prefix"]


# azureml-core's datastore.upload leaves the handles of files whose upload failed open (its thread pool
# drops them on the error path); the warning is the SDK's, so only this test ignores it.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_upload_to_a_stopped_emulator_fails_the_job(
    azurite: Azurite, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK logs each failed file with a malformed logging call; outside pytest (whose capture
    # handler raises on it) that prints an error and upload() returns normally, which this test reproduces.
    monkeypatch.setattr(logging.getLogger("azureml.data.azure_storage_datastore"), "propagate", False)
    datastore = blob_datastore(azurite, retries=0)
    datastore.blob_service.create_container(CONTAINER)
    backend = backend_over(datastore, tmp_path)
    azurite.stop()
    started = time.monotonic()
    with pytest.raises(BackendUnavailable):
        backend.upload_data(data_dir, target_path="titanic-data")
    assert time.monotonic() - started < 60


# -- azureml-v2: the backend's own storage-client upload, with only the datastore's address redirected --------


def v2_backend_over(azurite: Azurite, tmp_path: Path, **client_options: object) -> tuple[AzureMLV2Backend, Any]:
    """The v2 backend over a fake workspace whose default datastore is the emulator's account (real entity)."""
    settings = make_settings(tmp_path / "aml", backend="azureml-v2")
    fake = FakeAzureV2(tmp_path / "fake-v2", settings)
    fake.datastores[BLOBSTORE] = V2BlobDatastore(
        name=BLOBSTORE,
        account_name=ACCOUNT,
        container_name=CONTAINER,
        protocol="http",
        credentials=AccountKeyConfiguration(account_key=KEY),
    )
    make_client = functools.partial(ContainerClient, connection_timeout=2, read_timeout=5, **client_options)
    backend = AzureMLV2Backend(
        settings,
        client=fake.client,
        mlflow_client=fake.mlflow,
        account_url=lambda datastore: azurite.url,  # the one redirect: where the datastore's account is
        container_client=make_client,
        retry_delay=0.0,
    )
    container = ContainerClient(azurite.url, CONTAINER, credential=KEY)
    with contextlib.suppress(ResourceExistsError):  # a second backend over the same emulator (another process)
        container.create_container()
    return backend, container


def download_all(container: Any, prefix: str, into: Path) -> Path:
    for blob in container.list_blobs(name_starts_with=prefix):
        target = into / blob.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(container.download_blob(blob.name).readall())
    return into / prefix.rstrip("/")


def test_v2_each_upload_lands_whole_under_a_prefix_of_its_own(azurite: Azurite, tmp_path: Path, data_dir: Path) -> None:
    (data_dir / "sub" / "big.bin").write_bytes(bytes(range(256)) * 4096)
    backend, container = v2_backend_over(azurite, tmp_path)
    data = backend.upload_data(data_dir, target_path="titanic-data")
    assert data.digest == tree_digest(data_dir).digest and data.files == 3
    assert backend.current_data("titanic-data") == data
    (data_dir / "sub" / "big.bin").unlink()
    smaller = backend.upload_data(data_dir, target_path="titanic-data")
    assert backend.current_data("titanic-data") == smaller
    prefixes = sorted({b.name.split("/")[1] for b in container.list_blobs(name_starts_with="titanic-data/")})
    assert len(prefixes) == 2  # the first upload's prefix is left whole beside the second's
    held = {tree_digest(download_all(container, f"titanic-data/{p}/", tmp_path / p)).digest for p in prefixes}
    assert held == {data.digest, smaller.digest}


def test_v2_upload_to_a_stopped_emulator_fails_clearly(azurite: Azurite, tmp_path: Path, data_dir: Path) -> None:
    backend, _ = v2_backend_over(azurite, tmp_path, retry_total=0)
    azurite.stop()
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match=r"uploading .*failed 4 times"):
        backend.upload_data(data_dir, target_path="titanic-data")
    assert time.monotonic() - started < 60
    assert backend.current_data("titanic-data") is None


def test_v2_models_download_runs_the_sdks_own_blob_code(azurite: Azurite, tmp_path: Path) -> None:
    """The real ModelOperations.download (a real MLClient, no network) fetching a job's outputs from Azurite.

    Faked: the registry lookup (ModelOperations.get, answering as Azure does once it has resolved a
    job-output model to the artifact store's path) and the datastore lookup; redirected: the storage
    account's address, to the emulator. The SDK's own storage client does the listing and download.
    """
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import Model
    from azure.ai.ml.operations import DatastoreOperations, ModelOperations
    from azure.ai.ml.operations import _model_operations as model_operations
    from azure.core.credentials import AccessToken

    class NoCredential:
        def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
            raise AssertionError("nothing here may ask for a token")

    artifacts = ContainerClient(azurite.url, "azureml", credential=KEY)
    artifacts.create_container()
    files = {"model.pkl": b"\x80pickle" * 1000, "lookup.pkl": b"lookup", "sub/flags.pkl": b"flags"}
    for rel, content in files.items():
        artifacts.upload_blob(f"ExperimentRun/dcid.azml-run_1/outputs/{rel}", content)
    resolved = "azureml://datastores/workspaceartifactstore/paths/ExperimentRun/dcid.azml-run_1/outputs/"
    store = V2BlobDatastore(
        name="workspaceartifactstore",
        account_name=ACCOUNT,
        container_name="azureml",
        protocol="http",
        credentials=AccountKeyConfiguration(account_key=KEY),
    )
    real_storage_client = model_operations.get_storage_client

    def at_azurite(**kwargs: object) -> object:
        return real_storage_client(**{**kwargs, "account_url": azurite.url})

    client = MLClient(NoCredential(), "00000000-0000-0000-0000-000000000000", "rg", "ws")
    with (
        patch.object(ModelOperations, "get", autospec=True) as get,
        patch.object(DatastoreOperations, "get", autospec=True, return_value=store) as get_datastore,
        patch.object(model_operations, "get_storage_client", side_effect=at_azurite),
    ):
        get.return_value = Model(name="m", version="1", path=resolved)
        client.models.download("m", "1", download_path=tmp_path / "d")
        get_datastore.assert_called_once_with(ANY, "workspaceartifactstore", include_secrets=True)
        backend = AzureMLV2Backend(make_settings(tmp_path / "aml", backend="azureml-v2"), client=client)
        written = backend.download_model("m", 1, tmp_path / "fetched")
    assert sorted(written) == sorted(files)
    assert {rel: (tmp_path / "fetched" / rel).read_bytes() for rel in files} == files
    assert tree_digest(tmp_path / "d" / "m" / "outputs").digest == tree_digest(tmp_path / "fetched").digest


def test_v2_run_outputs_stream_from_real_blobs(azurite: Azurite, tmp_path: Path, data_dir: Path) -> None:
    """download_run_outputs over the storage SDK's own ContainerClient and StorageStreamDownloader.readinto.
    The run is made in the fake workspace; the artifact store it is read from is the emulator's. (A blob
    named with '..' can't be made through the SDK: its URL is normalised and the signature fails; names
    that would leave the folder are tested on amllib.files.place_for.)"""
    from amllib.backends.base import RunSpec

    settings = make_settings(tmp_path / "aml", backend="azureml-v2")
    fake = FakeAzureV2(tmp_path / "fake-v2", settings)
    maker = fake.backend(settings)
    maker.upload_data(data_dir, target_path="test-data")
    spec = RunSpec(script="mlflow_logging.py", experiment="tests", datapath="test-data", compute="local-cluster")
    run_id = maker.submit_run(spec)
    artifacts = ContainerClient(azurite.url, "azureml", credential=KEY)
    artifacts.create_container()
    files = {"model.pkl": bytes(range(256)) * 8192, "sub/flags.txt": b"flags"}
    for rel, content in files.items():
        artifacts.upload_blob(f"ExperimentRun/dcid.{run_id}/outputs/{rel}", content)
    fake.datastores["workspaceartifactstore"] = V2BlobDatastore(
        name="workspaceartifactstore",
        account_name=ACCOUNT,
        container_name="azureml",
        protocol="http",
        credentials=AccountKeyConfiguration(account_key=KEY),
    )
    backend = AzureMLV2Backend(
        settings,
        client=fake.client,
        mlflow_client=fake.mlflow,
        account_url=lambda datastore: azurite.url,
        container_client=functools.partial(ContainerClient, connection_timeout=2, read_timeout=5),
        retry_delay=0.0,
    )
    dest = tmp_path / "deep" / "outputs"
    written = backend.download_run_outputs(run_id, dest)
    assert sorted(written) == ["model.pkl", "sub/flags.txt"]
    assert {rel: (dest / rel).read_bytes() for rel in written} == files


def test_alias_books_are_a_real_compare_and_set_on_blob_storage(azurite: Azurite, tmp_path: Path) -> None:
    """The ETag conditions the alias book relies on, sent by the real storage client and enforced by Azurite: a
    second first-write loses, a write from a stale read loses, two processes' moves both land in order."""
    from amllib.backends.base import AliasBook
    from amllib.promotion import Change, apply

    one, _ = v2_backend_over(azurite, tmp_path / "one")
    two, _ = v2_backend_over(azurite, tmp_path / "two")  # another process on the same workspace
    empty = one.read_aliases("m")
    assert empty.token is None and empty.aliases == {}
    first = AliasBook(aliases={"production": {"version": 1}})
    assert one.write_aliases("m", first, expected=None)
    assert not two.write_aliases("m", AliasBook(aliases={"production": {"version": 9}}), expected=None)
    seen = two.read_aliases("m")
    assert seen.holder("production") == 1 and seen.token
    assert one.write_aliases("m", AliasBook(aliases={"production": {"version": 2}}), expected=seen.token)
    assert not two.write_aliases("m", AliasBook(aliases={"production": {"version": 3}}), expected=seen.token)
    assert two.read_aliases("m").holder("production") == 2

    one.list_model_versions = two.list_model_versions = lambda name: [  # type: ignore[method-assign]
        ModelVersion(name="m", version=v, tags={}, run_id=None, created_at=0.0) for v in (1, 2, 3)
    ]
    apply(one, "m", Change("staging", 1, by="one"))
    apply(two, "m", Change("staging", 3, by="two"))
    book = one.read_aliases("m")
    assert book.holder("staging") == 3 and [h["to"] for h in book.history] == [1, 3]


def test_v2_upload_progress_moves_by_blocks_of_one_large_file(azurite: Azurite, tmp_path: Path, data_dir: Path) -> None:
    (data_dir / "large.bin").write_bytes(os.urandom(1024) * (19 * 1024))  # 19 MiB: 5 blocks of at most 4 MiB
    backend, _ = v2_backend_over(azurite, tmp_path)
    told: list[tuple[int, int]] = []
    data = backend.upload_data(
        data_dir, target_path="progress-data", progress=lambda sent, done: told.append((sent, done))
    )
    assert sum(sent for sent, _ in told) == data.bytes and sum(done for _, done in told) == data.files == 3
    large = [sent for sent, _ in told if sent]
    assert len(large) >= 5 and max(large) <= 4 * 1024 * 1024  # told block by block, not once per file
