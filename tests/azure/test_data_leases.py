"""Old data versions on Azure go only when replaced long enough ago and no unfinished run holds them (both SDKs).

Against the autospec fakes, whose blob container behaves as azure-storage-blob's (fake_blobs.py),
and once against Azurite for the real listing-by-folder and delete calls.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from amllib.backends.azure.data_versions import LEASES, prefix_time
from amllib.backends.base import RunSpec
from amllib.settings import Settings
from tests.azure.azurite import Azurite
from tests.azure.fake_aml import FakeAzure
from tests.azure.fake_aml_v2 import BLOBSTORE, FakeAzureV2
from tests.azure.test_azurite import v2_backend_over

LATER = 10.0  # a cutoff past every upload here


class Workspace:
    """One backend over its fake workspace, with the folder its datastore's blobs are kept in."""

    def __init__(self, kind: str, tmp_path: Path, settings: Settings) -> None:
        if kind == "azureml":
            self.fake: Any = FakeAzure(tmp_path / "azure", settings)
            self.blobs = self.fake.container
            self.script = "aml_v1_logging.py"
        else:
            self.fake = FakeAzureV2(tmp_path / "azure-v2", settings)
            self.blobs = self.fake.blob_root / self.fake.datastores[BLOBSTORE].container_name
            self.script = "mlflow_logging.py"
        self.backend = self.fake.backend(settings)
        self.backend.superseded_grace = 0.0

    def submit(self) -> str:
        spec = RunSpec(script=self.script, experiment="tests", datapath="test-data", compute="cluster")
        run_id = self.backend.submit_run(spec)
        self.fake.status_override[run_id] = "Running"
        return run_id

    def prefixes(self) -> list[str]:
        folder = self.blobs / "test-data"
        return sorted(p.name for p in folder.iterdir() if prefix_time(p.name) is not None)

    def leases(self) -> list[str]:
        folder = self.blobs / LEASES
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture(params=["azureml", "azureml-v2"])
def workspace(request: pytest.FixtureRequest, tmp_path: Path, azure_settings: Settings) -> Workspace:
    settings = azure_settings.model_copy(update={"backend": request.param})
    return Workspace(request.param, tmp_path, settings)


def upload(workspace: Workspace, data_dir: Path, content: str) -> Any:
    (data_dir / "a.csv").write_text(content)
    return workspace.backend.upload_data(data_dir, target_path="test-data")


def test_a_replaced_version_goes_once_no_unfinished_run_holds_it(workspace: Workspace, data_dir: Path) -> None:
    backend = workspace.backend
    upload(workspace, data_dir, "x,y\n1,2\n")
    run_id = workspace.submit()  # holds the first version
    upload(workspace, data_dir, "x,y\n3,4\n")
    third = upload(workspace, data_dir, "x,y\n5,6\n")
    first, second, current = workspace.prefixes()
    assert [lease.split("/")[1] for lease in workspace.leases()] == [first]

    assert backend.prune_data(superseded_before=time.time() + LATER) == 1
    assert workspace.prefixes() == [first, current]  # the second went; the held first and the current stay
    assert (workspace.blobs / "test-data" / first / "a.csv").read_text() == "x,y\n1,2\n"

    workspace.fake.status_override[run_id] = "Completed"
    assert backend.prune_data(superseded_before=time.time() + LATER) == 1
    assert workspace.prefixes() == [current] and workspace.leases() == []
    assert backend.current_data("test-data") == third
    assert backend.prune_data(superseded_before=time.time() + LATER) == 0
    assert second not in str(list(workspace.blobs.rglob("*")))


def test_nothing_goes_that_was_replaced_after_the_cutoff_or_within_the_hour(
    workspace: Workspace, data_dir: Path
) -> None:
    backend = workspace.backend
    upload(workspace, data_dir, "x,y\n1,2\n")
    replaced_at = time.time()
    upload(workspace, data_dir, "x,y\n3,4\n")
    assert backend.prune_data(superseded_before=replaced_at - 1) == 0  # replaced after the cutoff
    backend.superseded_grace = 3600.0
    assert backend.prune_data(superseded_before=time.time() + LATER) == 0  # replaced less than an hour ago
    assert len(workspace.prefixes()) == 2


def test_another_tools_files_and_a_submit_in_progress_are_left_alone(workspace: Workspace, data_dir: Path) -> None:
    backend = workspace.backend
    upload(workspace, data_dir, "x,y\n1,2\n")
    upload(workspace, data_dir, "x,y\n3,4\n")
    first = workspace.prefixes()[0]
    theirs = workspace.blobs / "test-data" / "raw" / "2026" / "x.csv"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("not ours")
    backend._hold(backend._data_container(), f"test-data/{first}", "a-submit", None)  # no run id yet
    assert backend.prune_data(superseded_before=time.time() + LATER) == 0
    backend.lease_grace = 0.0  # that submit died: its lease no longer holds
    assert backend.prune_data(superseded_before=time.time() + LATER) == 1
    assert theirs.read_text() == "not ours" and workspace.leases() == []


def test_v2_archives_the_data_asset_version_of_a_removed_prefix(
    tmp_path: Path, v2_settings: Settings, data_dir: Path
) -> None:
    workspace = Workspace("azureml-v2", tmp_path, v2_settings)
    upload(workspace, data_dir, "x,y\n1,2\n")
    upload(workspace, data_dir, "x,y\n3,4\n")
    assert workspace.backend.prune_data(superseded_before=time.time() + LATER) == 1
    assert workspace.fake.archived_data == {("test-data", "1")}  # the asset no longer offers the removed files
    assert workspace.backend.current_data("test-data").digest


def test_pruning_on_azurite(azurite: Azurite, tmp_path: Path, data_dir: Path) -> None:
    """The storage calls for real: listing one level by delimiter, deleting blob by blob, leases as blobs."""
    backend, container = v2_backend_over(azurite, tmp_path)
    backend.superseded_grace = 0.0
    for content in ("1", "2", "3"):
        (data_dir / "a.csv").write_text(content)
        backend.upload_data(data_dir, target_path="titanic-data")
    container.upload_blob("titanic-data/raw/x.csv", b"another tool's")

    def prefixes() -> list[str]:
        return sorted({b.name.split("/")[1] for b in container.list_blobs(name_starts_with="titanic-data/")})

    first, second, third, raw = prefixes()
    assert raw == "raw"
    backend._hold(container, f"titanic-data/{first}", "azml-gone", "azml-gone")  # its job no longer exists
    backend._hold(container, f"titanic-data/{second}", "a-submit", None)
    assert backend.prune_data(superseded_before=time.time() + LATER) == 1
    assert prefixes() == [second, third, "raw"]
    assert [b.name for b in container.list_blobs(name_starts_with=LEASES)] == [
        f"{LEASES}/titanic-data/{second}/a-submit"
    ]
