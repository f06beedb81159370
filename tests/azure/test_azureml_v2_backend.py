"""What only the azureml-v2 backend does, against autospec fakes of the real azure-ai-ml operation classes."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from azure.ai.ml.entities import AmlCompute, ComputeInstance, Model
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceResponseError,
)

from amllib.backends import get_backend
from amllib.backends.azure.auth import choose_credential
from amllib.backends.azure.common import STATUS, map_status
from amllib.backends.azure.v2 import AzureMLV2Backend, asset_name, job_name
from amllib.backends.base import TERMINAL, RunSpec, RunStatus
from amllib.errors import BackendUnavailable, ConfigError, Conflict, DataNotFound, InvalidInput, RunNotFound
from amllib.settings import Settings
from amllib.training import finish_run
from service.core.events import EventFeed
from service.core.jobs import Jobs
from service.core.schemas import render
from service.core.store import Job
from service.core.store_sqlite import SqliteStore
from service.core.worker import Worker
from tests.azure.conftest import spec_for
from tests.azure.fake_aml_v2 import FakeAzureV2

SECRET = "s3cr3t-client-value"
# Every status of the REST JobStatus enum (azure/ai/ml/_restclient/.../_enums.py) and where it lands:
# the same table as v1's (common.STATUS). Paused, CancelRequested and Unknown have not ended: Running.
V2_STATUSES = {
    "NotStarted": RunStatus.QUEUED,
    "Queued": RunStatus.QUEUED,
    "Paused": RunStatus.RUNNING,
    "Unknown": RunStatus.RUNNING,
    "Starting": RunStatus.PREPARING,
    "Provisioning": RunStatus.PREPARING,
    "Preparing": RunStatus.PREPARING,
    "Running": RunStatus.RUNNING,
    "NotResponding": RunStatus.FAILED,  # ended, as azure-ai-ml's TERMINAL_STATUSES has it
    "Finalizing": RunStatus.FINALIZING,
    "CancelRequested": RunStatus.RUNNING,
    "Completed": RunStatus.COMPLETED,
    "Failed": RunStatus.FAILED,
    "Canceled": RunStatus.CANCELED,
}


@pytest.fixture
def fake(tmp_path: Path, v2_settings: Settings) -> FakeAzureV2:
    return FakeAzureV2(tmp_path / "azure-v2", v2_settings)


@pytest.fixture
def backend(fake: FakeAzureV2, v2_settings: Settings) -> AzureMLV2Backend:
    return fake.backend(v2_settings)


def spec(**kwargs: object) -> RunSpec:
    return spec_for("mlflow_logging.py", **kwargs)


def test_the_mapping_covers_every_v2_status_and_never_ends_a_run_that_can_go_on() -> None:
    assert set(V2_STATUSES) <= set(STATUS)  # one table for both SDKs
    for status, ours in V2_STATUSES.items():
        assert map_status(status) == ours
    assert map_status("NotResponding").terminal and not map_status("Paused").terminal
    assert map_status("SomethingNew") == RunStatus.RUNNING and map_status(None) == RunStatus.RUNNING


@pytest.mark.parametrize("v2_status", sorted(V2_STATUSES))
def test_each_status_reaches_the_run_info(
    fake: FakeAzureV2, backend: AzureMLV2Backend, data_dir: Path, v2_status: str
) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec(script="sleep_and_record.py", args={"seconds": "0.1"}))
    fake.status_override[run_id] = v2_status
    assert backend.get_run(run_id).status == V2_STATUSES[v2_status]


def test_a_job_is_named_after_its_service_job_and_found_again_after_a_restart(
    fake: FakeAzureV2, v2_settings: Settings, data_dir: Path
) -> None:
    first = fake.backend(v2_settings)
    first.upload_data(data_dir, target_path="test-data")
    run_id = first.submit_run(spec(tags={"job_id": "run_abc"}))
    assert run_id == job_name("run_abc") == "azml-run_abc"
    again = fake.backend(v2_settings)  # a new process: nothing in memory
    assert again.find_runs("tests", tag="job_id", value="run_abc") == [run_id]
    assert again.find_runs("tests", tag="job_id", value="run_other") == []
    assert again.find_runs("elsewhere", tag="job_id", value="run_abc") == []
    assert again.wait_for_run(run_id, timeout=60, poll=0.2).status == RunStatus.COMPLETED
    assert len(fake.submitted) == 1
    info = again.get_run(run_id)
    assert info.data_version.startswith("sha256:") and info.script_digest.startswith("sha256:")
    assert (info.script, info.datapath, info.compute) == ("mlflow_logging.py", "test-data", "cluster")
    assert "azml_script" not in info.tags and info.tags["job_id"] == "run_abc"


def test_the_job_is_the_seeds_flow_in_v2_terms(fake: FakeAzureV2, backend: AzureMLV2Backend, data_dir: Path) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    backend.submit_run(spec(estimators=5, args={"flavour": "it's"}))
    job = fake.submitted[0]
    assert job.command.startswith("python mlflow_logging.py ")
    assert "--data-path '${{inputs.data}}'" in job.command and "--estimators 5" in job.command
    assert "'--flavour=it'\"'\"'s'" in job.command  # shell-quoted, one word
    assert job.inputs["data"].path == "azureml:test-data:1"  # the Data asset version: lineage in the studio
    assert job.experiment_name == "tests" and job.compute == "cluster"
    assert job.environment.image.startswith("mcr.microsoft.com/azureml/")


def test_each_upload_is_an_immutable_data_version_under_its_own_prefix(
    fake: FakeAzureV2, backend: AzureMLV2Backend, data_dir: Path, tmp_path: Path
) -> None:
    """Version 1 of the asset keeps version 1's files: each version names its own prefix, never written again."""
    first = backend.upload_data(data_dir, target_path="test-data")
    other = tmp_path / "other"
    other.mkdir()
    (other / "only.csv").write_text("1\n")
    second = backend.upload_data(other, target_path="test-data")
    versions = fake.data_assets[asset_name("test-data")]
    assert [v.tags["digest"] for v in versions] == [first.digest, second.digest]
    container = fake.blob_root / "azureml-blobstore-fake"
    held = []
    for version in versions:
        prefix = version.path.split("/paths/", 1)[1].rstrip("/")
        assert prefix.startswith("test-data/") and prefix != "test-data"
        held.append(
            sorted(p.relative_to(container / prefix).as_posix() for p in (container / prefix).rglob("*") if p.is_file())
        )
    assert held == [["a.csv", "sub/b.txt"], ["only.csv"]]
    assert backend.current_data("test-data") == second
    assert backend.list_data() == [second]
    assert asset_name("team/x y") != asset_name("team-x-y") and "/" not in asset_name("team/x y")


def test_upload_that_lost_a_blob_fails_and_registers_nothing(
    fake: FakeAzureV2, backend: AzureMLV2Backend, data_dir: Path
) -> None:
    make = fake.container_client

    def lossy(account_url: str, container_name: str, credential: object = None, **options: object) -> object:
        client = make(account_url, container_name, credential, **options)
        upload = client.upload_blob.side_effect

        def drop_b(name: str, data: object, *args: object, **kwargs: object) -> object:
            return None if name.endswith("b.txt") else upload(name, data, *args, **kwargs)

        client.upload_blob.side_effect = drop_b
        return client

    backend._container_client = lossy
    with pytest.raises(BackendUnavailable, match=r"incomplete.*sub/b\.txt"):
        backend.upload_data(data_dir, target_path="test-data")
    assert backend.current_data("test-data") is None


def test_run_without_data_is_refused(backend: AzureMLV2Backend) -> None:
    with pytest.raises(DataNotFound, match="test-data"):
        backend.submit_run(spec())


def test_compute_reused_created_with_the_settings_or_refused(fake: FakeAzureV2, backend: AzureMLV2Backend) -> None:
    assert backend.ensure_compute("cluster") == "cluster"
    created = fake.created_with
    assert (created.size, created.min_instances, created.max_instances) == ("Standard_D3_v2", 0, 3)
    assert created.idle_time_before_scale_down == 3600
    assert backend.ensure_compute("cluster") == "cluster"
    fake.client.compute.begin_create_or_update.assert_called_once()
    fake.computes["notebook"] = ComputeInstance(name="notebook", size="Standard_DS3_v2")
    with pytest.raises(Conflict, match="notebook"):
        backend.ensure_compute("notebook")
    assert isinstance(fake.computes["cluster"], AmlCompute)


def test_a_run_registers_once_and_downloads_into_the_fetch_layout(
    fake: FakeAzureV2, backend: AzureMLV2Backend, data_dir: Path, tmp_path: Path
) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec(args={"flavour": "salty"}))
    assert backend.wait_for_run(run_id, timeout=60, poll=0.2).status == RunStatus.COMPLETED
    made = finish_run(backend, run_id, model_name="m").model_version
    again = backend.register_model(run_id=run_id, model_name="m", tags={"accuracy": 0.93})
    assert made == again and len(fake.models["m"]) == 1  # Azure would have made version 2
    stored = fake.models["m"][0]
    assert stored.path == f"azureml://jobs/{run_id}/outputs/artifacts/paths/outputs/"
    assert stored.tags == {"accuracy": "0.93"} and stored.properties["run_id"] == run_id
    assert made.data_version.startswith("sha256:") and made.run_id == run_id
    assert backend.versions_of_run(run_id) == [made]
    assert backend.download_model("m", 1, tmp_path / "out") == ["model.txt"]
    assert (tmp_path / "out" / "model.txt").read_text() == "salty"


def test_a_failed_job_is_not_registered(backend: AzureMLV2Backend, data_dir: Path) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec(script="fail.py"))
    info = backend.wait_for_run(run_id, timeout=60, poll=0.2)
    assert info.status == RunStatus.FAILED and info.error
    assert "about to fail" in backend.get_log(run_id, tail=5)
    assert finish_run(backend, run_id, model_name="m").model_version is None


def test_transient_errors_are_retried_and_auth_failures_are_named_without_secrets(
    fake: FakeAzureV2, v2_settings: Settings, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = fake.backend(v2_settings)
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec())
    real_get = fake.client.jobs.get.side_effect
    failures = [HttpResponseError(message="throttled", response=None), ConnectionError("reset")]
    failures[0].status_code = 429

    def flaky(name: str) -> object:
        if failures:
            raise failures.pop(0)
        return real_get(name)

    fake.client.jobs.get.side_effect = flaky
    assert backend.get_run(run_id).run_id == run_id

    monkeypatch.setenv("AZURE_TENANT_ID", "tenant")
    monkeypatch.setenv("AZURE_CLIENT_ID", "client")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    connected = AzureMLV2Backend(v2_settings, retry_delay=0.0)
    client = connected.client  # a real MLClient: building it contacts nothing
    assert (client.subscription_id, client.resource_group_name, client.workspace_name) == ("sub-1", "rg-1", "ws-1")
    assert type(client._credential).__name__ == "ClientSecretCredential"
    connected._client = fake.client  # then the workspace refuses the credential
    fake.client.jobs.get.side_effect = ClientAuthenticationError(message=f"AADSTS7000215: invalid secret {SECRET}")
    with pytest.raises(BackendUnavailable) as caught:
        connected.get_run(run_id)
    message = str(caught.value)
    assert "'ws-1'" in message and "service principal" in message and "AADSTS7000215" in message
    assert SECRET not in message


def test_azure_core_errors_become_ours(fake: FakeAzureV2, backend: AzureMLV2Backend) -> None:
    def answering(status: int) -> HttpResponseError:
        error = HttpResponseError(message=f"status {status} from Azure")
        error.status_code = status
        return error

    cases = [
        (ResourceExistsError(message="exists"), Conflict),
        (answering(400), InvalidInput),
        (answering(403), BackendUnavailable),
        (ResourceNotFoundError(message="no such job"), RunNotFound),
    ]
    for raised, ours in cases:
        fake.client.jobs.get.side_effect = raised
        with pytest.raises(ours, match="azml-x"):
            backend.get_run("azml-x")
    fake.client.jobs.get.side_effect = None


def test_credentials_follow_the_v1_choices(v2_settings: Settings) -> None:
    sp = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": SECRET}
    assert type(choose_credential(v2_settings, sp)[1]).__name__ == "ClientSecretCredential"
    msi = v2_settings.model_copy(update={"auth": "msi"})
    assert type(choose_credential(msi, {"AZURE_CLIENT_ID": "uami"})[1]).__name__ == "ManagedIdentityCredential"
    cli = v2_settings.model_copy(update={"auth": "cli"})
    assert type(choose_credential(cli, {})[1]).__name__ == "AzureCliCredential"
    with pytest.raises(ConfigError, match="AZURE_CLIENT_SECRET"):
        choose_credential(v2_settings, {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c"})
    with pytest.raises(ConfigError, match="AZML_AUTH=msi, cli or interactive"):
        choose_credential(v2_settings, {})


def test_the_setting_picks_the_backend(v2_settings: Settings) -> None:
    assert isinstance(get_backend(v2_settings), AzureMLV2Backend)
    with pytest.raises(ConfigError, match="AZML_SUBID"):
        v2_settings.model_copy(update={"subid": None}).require_identity()


def test_a_service_restart_during_a_v2_run_reattaches_by_name(
    fake: FakeAzureV2, v2_settings: Settings, data_dir: Path, tmp_path: Path
) -> None:
    """The service's own worker and job store, stopped mid-run and started again on the same workspace."""
    settings = v2_settings.model_copy(update={"poll_seconds": 0.1, "run_import_seconds": 0.0})
    fake.backend(settings).upload_data(data_dir, target_path="test-data")
    spec = {
        "experiment": "tests",
        "script": "sleep_and_record.py",
        "model": "m",
        "datapath": "test-data",
        "compute": "cluster",
        "estimators": None,
        "args": {"seconds": "2"},
        "created_by": "ci",
    }

    async def life(first: bool) -> Job:
        store = SqliteStore(tmp_path / "jobs.sqlite")
        jobs = Jobs(store, render=lambda job: render(job, "azureml-v2"), feed=EventFeed(store))
        worker = Worker(settings=settings, backend=fake.backend(settings), jobs=jobs)
        try:
            if first:
                job = Job(id="run_restart1", kind="run", status=RunStatus.QUEUED, spec=spec, created_at=time.time())
                stored, _ = await jobs.create(job)
                worker.start(stored)
                while store.get("run_restart1").status != RunStatus.RUNNING:
                    await asyncio.sleep(0.05)
            else:
                assert await worker.resume() == 1
                while store.get("run_restart1").status not in TERMINAL:
                    await asyncio.sleep(0.05)
            return store.get("run_restart1")
        finally:
            await worker.close()  # the first life ends here, mid-run, as a stopped service does
            store.close()

    running = asyncio.run(life(first=True))
    assert running.backend_run_id == "azml-run_restart1"
    # the state a kill leaves between jobs.create_or_update returning and the job store recording it
    with sqlite3.connect(tmp_path / "jobs.sqlite") as db:
        db.execute("UPDATE jobs SET backend_run_id = NULL, status = 'Queued' WHERE id = 'run_restart1'")
    ended = asyncio.run(life(first=False))
    assert ended.status == RunStatus.COMPLETED, ended.error
    assert len(fake.submitted) == 1  # found again by its name, never submitted twice
    assert ended.result["model_version"] == {"name": "m", "version": 1} and len(fake.models["m"]) == 1


# -- where the real SDK is less kind than a naive fake (../shared/research/azure-sdk-facts.md) --------------


def test_jobs_the_sdk_cannot_read_are_skipped_and_listing_goes_on(
    fake: FakeAzureV2, backend: AzureMLV2Backend, data_dir: Path
) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec(tags={"job_id": "run_a"}))
    fake.unreadable_jobs = [None, "unsupported"]
    assert [info.run_id for info in backend.list_runs()] == [run_id]
    assert backend.find_runs("tests", tag="flavour", value="x") == []


def test_a_data_path_this_service_never_registered_has_no_current_version(
    fake: FakeAzureV2, backend: AzureMLV2Backend
) -> None:
    """data.get(label='latest') of a missing asset raises ValidationException (RESOURCE_NOT_FOUND), not a 404."""
    assert backend.current_data("never-uploaded") is None
    with pytest.raises(DataNotFound):
        backend.submit_run(spec(datapath="never-uploaded"))


def test_a_compute_still_creating_when_the_wait_ends_is_a_clear_error(
    fake: FakeAzureV2, backend: AzureMLV2Backend
) -> None:
    """LROPoller.result(timeout) returns when the time is up; only done() tells."""
    create = fake.client.compute.begin_create_or_update.side_effect

    def slow(compute: Any) -> Any:
        poller = create(compute)
        poller.result.side_effect = lambda timeout=None: None
        poller.done.side_effect = lambda: False
        return poller

    fake.client.compute.begin_create_or_update.side_effect = slow
    with pytest.raises(BackendUnavailable, match="not ready within"):
        backend.ensure_compute("new-cluster")
    fake.client.compute.begin_create_or_update.side_effect = create
    fake.compute_outcome = "Failed"  # the operation fails: result() raises, and the error says so
    with pytest.raises(BackendUnavailable, match=r"creating compute 'other-cluster' failed.*Failed"):
        backend.ensure_compute("other-cluster")


def test_a_cancel_is_requested_then_takes_effect(fake: FakeAzureV2, backend: AzureMLV2Backend, data_dir: Path) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec(script="sleep_and_record.py", args={"seconds": "30"}))
    backend.cancel_run(run_id)
    assert backend.get_run(run_id).status == RunStatus.RUNNING  # CancelRequested, as Azure shows first
    assert backend.wait_for_run(run_id, timeout=60, poll=0.1).status == RunStatus.CANCELED


def test_sdk_validation_before_sending_is_invalid_input(fake: FakeAzureV2, backend: AzureMLV2Backend) -> None:
    from azure.ai.ml.exceptions import ErrorTarget, ValidationException

    fake.client.jobs.get.side_effect = ValidationException(
        message="job name is invalid", no_personal_data_message="invalid", target=ErrorTarget.JOB
    )
    with pytest.raises(InvalidInput, match="job name is invalid"):
        backend.get_run("azml-x")


def test_two_registrations_of_one_model_at_once_never_share_a_version(
    fake: FakeAzureV2, backend: AzureMLV2Backend, data_dir: Path
) -> None:
    """Without a version the SDK numbers it client-side (next_version): two at once could collide. The backend
    numbers each itself, one at a time per model, and a 409 from elsewhere retries with the next number."""
    from concurrent.futures import ThreadPoolExecutor

    backend.upload_data(data_dir, target_path="test-data")
    runs = [backend.submit_run(spec(tags={"job_id": f"run_{i}"})) for i in range(4)]
    for run_id in runs:
        backend.wait_for_run(run_id, timeout=120, poll=0.2)
    thief, runs = runs[3], runs[:3]
    stolen = fake.client.models.create_or_update.side_effect
    taken = {"first": True}

    def another_process_took_it(model: Any) -> Any:
        if taken.pop("first", False):  # someone else registered this very number a moment before, its own job
            path = f"azureml://jobs/{thief}/outputs/artifacts/paths/outputs/"
            stolen(Model(name=model.name, version=model.version, path=path, type=model.type, tags={}))
        return stolen(model)  # Azure's 400 "Asset paths cannot be updated.": the next number is tried

    fake.client.models.create_or_update.side_effect = another_process_took_it
    with ThreadPoolExecutor(3) as pool:
        made = list(pool.map(lambda r: backend.register_model(run_id=r, model_name="m", tags={}), runs))
    assert sorted(v.version for v in made) == [2, 3, 4]
    assert len({v.version for v in backend.list_model_versions("m")}) == 4


def test_a_create_retried_after_a_lost_answer_finds_the_job_it_made(
    fake: FakeAzureV2, backend: AzureMLV2Backend, data_dir: Path
) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    submit = fake.client.jobs.create_or_update.side_effect
    calls = {"n": 0}

    def lost_then_conflict(job: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        made = submit(job, **kwargs)  # the second call meets the job the first made: 409
        if calls["n"] == 1:
            raise ServiceResponseError("the connection dropped before the answer")
        return made

    fake.client.jobs.create_or_update.side_effect = lost_then_conflict
    run_id = backend.submit_run(spec(tags={"job_id": "run_lost"}))
    assert run_id == "azml-run_lost" and calls["n"] == 2
    assert backend.find_runs("tests", tag="job_id", value="run_lost") == [run_id]


def test_an_upload_retry_sends_the_file_again_not_an_empty_stream(
    fake: FakeAzureV2, backend: AzureMLV2Backend, data_dir: Path
) -> None:
    make = fake.container_client

    def flaky(account_url: str, container_name: str, credential: object = None, **options: object) -> object:
        client = make(account_url, container_name, credential, **options)
        upload = client.upload_blob.side_effect
        failed: set[str] = set()

        def read_then_drop(name: str, data: Any, *args: Any, **kwargs: Any) -> Any:
            if name not in failed:
                failed.add(name)
                data.read()  # the bytes went out, then the connection dropped
                raise ServiceResponseError("connection reset")
            return upload(name, data, *args, **kwargs)

        client.upload_blob.side_effect = read_then_drop
        return client

    fake.container_client = flaky
    backend._container_client = flaky
    data = backend.upload_data(data_dir, target_path="test-data")
    assert backend.current_data("test-data") == data  # every blob arrived whole on the second try


def test_promotion_and_archive_show_in_azures_own_stage_and_archive_marks(
    fake: FakeAzureV2, backend: AzureMLV2Backend, data_dir: Path
) -> None:
    """The alias book decides; Azure's `stage` and archived flag follow it (issue 28), and a version Azure
    holds archived stays listed, resolvable by number and archived after its tags change."""
    from amllib.promotion import Change, apply, set_archived

    backend.upload_data(data_dir, target_path="test-data")
    for _ in range(2):
        run_id = backend.submit_run(spec())
        assert backend.wait_for_run(run_id, timeout=60, poll=0.2).status == RunStatus.COMPLETED
        assert finish_run(backend, run_id, model_name="m").model_version
    apply(backend, "m", Change("production", 1, by="alice"))
    apply(backend, "m", Change("staging", 2, by="alice"))
    assert [model.stage for model in fake.models["m"]] == ["Production", "Staging"]
    apply(backend, "m", Change("production", 2, by="alice"))
    assert [model.stage for model in fake.models["m"]] == ["Development", "Production"]

    set_archived(backend, "m", 1, True)
    assert fake.archived_models == {("m", "1")}
    assert [v.version for v in backend.list_model_versions("m")] == [1, 2]
    assert backend.resolve_version("m", version=1).version == 1
    backend.update_version("m", 1, description="bad data")  # the SDK writes it back unarchived
    assert fake.archived_models == {("m", "1")}
    fake.archived_models.clear()  # a mirror that failed half-way: the next change of it makes it good
    set_archived(backend, "m", 1, True)
    assert fake.archived_models == {("m", "1")}
    set_archived(backend, "m", 1, False)
    assert fake.archived_models == set()
