"""What only the azureml backend does, against autospec'd fakes of the real azureml-core classes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from azureml.core.compute import ComputeInstance

from amllib.backends.azure.auth import choose_auth
from amllib.backends.azure.common import STATUS, map_status
from amllib.backends.azure.env import TRAINING_PIP_PACKAGES
from amllib.backends.azure.retry import with_retry
from amllib.backends.azure.v1 import AzureMLBackend
from amllib.backends.base import RunSpec, RunStatus
from amllib.errors import BackendUnavailable, ConfigError, Conflict, InvalidInput
from amllib.settings import Settings
from amllib.training import finish_run
from tests.azure.conftest import spec_for
from tests.azure.fake_aml import FakeAzure

SECRET = "s3cr3t-client-value"


@pytest.fixture
def fake(tmp_path: Path, azure_settings: Settings) -> FakeAzure:
    return FakeAzure(tmp_path / "azure", azure_settings)


@pytest.fixture
def backend(fake: FakeAzure, azure_settings: Settings) -> AzureMLBackend:
    return fake.backend(azure_settings)


def spec(**kwargs: object) -> RunSpec:
    return spec_for("aml_v1_logging.py", **kwargs)


class Failing(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


def test_compute_is_reused_when_it_exists(fake: FakeAzure, backend: AzureMLBackend) -> None:
    fake.add_compute("cluster")
    assert backend.ensure_compute("cluster") == "cluster"
    fake.sdk.ComputeTarget.create.assert_not_called()


def test_compute_is_created_with_the_settings_and_waited_for(fake: FakeAzure, backend: AzureMLBackend) -> None:
    assert backend.ensure_compute("new-cluster") == "new-cluster"
    config = fake.created_with
    scale = config.scale_settings
    assert (config.vm_size, scale.minimum_node_count, scale.maximum_node_count) == ("Standard_D3_v2", 0, 3)
    assert scale.idle_seconds_before_scaledown == 3600
    fake.computes["new-cluster"].wait_for_completion.assert_called_once()


def test_compute_of_another_type_is_a_clear_error(fake: FakeAzure, backend: AzureMLBackend) -> None:
    fake.add_compute("notebook", kind=ComputeInstance)
    with pytest.raises(Conflict, match="not an AmlCompute"):
        backend.ensure_compute("notebook")


@pytest.mark.parametrize("sdk_status", sorted(STATUS))
def test_every_sdk_status_maps(sdk_status: str) -> None:
    mapped = map_status(sdk_status)
    # NotResponding ends a run, as azure-ai-ml's own terminal set has it (issue 27, item 6): never waited on for ever
    assert mapped.terminal == (sdk_status in ("Completed", "Failed", "Canceled", "NotResponding"))
    assert map_status("SomethingNew") == RunStatus.RUNNING  # unknown is never taken as ended


def test_not_responding_is_the_sdks_terminal_state_and_says_why() -> None:
    from azure.ai.ml.operations._run_history_constants import RunHistoryConstants

    from amllib.backends.azure.common import run_error

    assert "NotResponding" in RunHistoryConstants.TERMINAL_STATUSES
    assert map_status("NotResponding") == RunStatus.FAILED and "NotResponding" in run_error("NotResponding")


def test_statuses_reach_the_run_info(fake: FakeAzure, backend: AzureMLBackend, data_dir: Path) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec())
    for sdk_status, ours in (
        ("Provisioning", "Preparing"),
        ("CancelRequested", "Running"),
        ("NotResponding", "Failed"),
        ("Finalizing", "Finalizing"),
    ):
        fake.status_override[run_id] = sdk_status
        assert backend.get_run(run_id).status == ours
    fake.status_override.clear()
    assert backend.wait_for_run(run_id, timeout=60, poll=0.2).status == RunStatus.COMPLETED


def test_run_configuration_on_the_cluster(fake: FakeAzure, backend: AzureMLBackend, data_dir: Path) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    backend.submit_run(spec(estimators=7, args={"flavour": "x"}))
    config = fake.submitted[-1]
    assert config.script == "aml_v1_logging.py"
    version = config.run_config.data_references["workspaceblobstore"].path_on_data_store
    assert version.startswith("test-data/") and version != "test-data/"  # the upload's own prefix
    assert list(config.arguments) == ["--flavour=x", "--data-path", f"/tmp/{version}", "--estimators", "7"]
    run_config = config.run_config
    assert run_config.target == "cluster"
    reference = run_config.data_references["workspaceblobstore"]
    assert reference.data_store_name == "workspaceblobstore"
    assert (reference.mode, reference.path_on_compute) == ("download", "/tmp")
    assert run_config.docker.use_docker is True
    assert run_config.environment.docker.base_image == backend.settings.env_image
    pip = run_config.environment.python.conda_dependencies.serialize_to_string()
    assert all(package in pip for package in TRAINING_PIP_PACKAGES)


def test_run_local_uses_this_interpreter(fake: FakeAzure, azure_settings: Settings, data_dir: Path) -> None:
    backend = fake.backend(azure_settings.model_copy(update={"run_local": True}))
    assert backend.ensure_compute("cluster") == "local"
    fake.sdk.ComputeTarget.assert_not_called()
    backend.upload_data(data_dir, target_path="test-data")
    backend.submit_run(spec())
    python = fake.submitted[-1].run_config.environment.python
    assert fake.submitted[-1].run_config.target == "local"
    assert python.user_managed_dependencies is True and python.interpreter_path == sys.executable


def test_register_needs_outputs(fake: FakeAzure, backend: AzureMLBackend, data_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "training-empty"
    empty.mkdir()
    (empty / "nothing.py").write_text("print('no outputs')\n")
    settings = backend.settings.model_copy(update={"training_dir": empty})
    fake.cloud.settings = fake.cloud.settings.model_copy(update={"training_dir": empty})
    fake.cloud.compute.training_dir = empty
    other = fake.backend(settings)
    other.upload_data(data_dir, target_path="test-data")
    run_id = other.submit_run(spec(script="nothing.py"))
    assert other.wait_for_run(run_id, timeout=60, poll=0.2).status == RunStatus.COMPLETED
    assert finish_run(other, run_id, model_name="m").model_version is None
    with pytest.raises(InvalidInput, match="no files in outputs"):
        other.register_model(run_id=run_id, model_name="m", tags={})


def test_best_version_by_accuracy_tag_and_fallback(fake: FakeAzure, backend: AzureMLBackend, data_dir: Path) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    run_ids = [backend.submit_run(spec()) for _ in range(3)]
    for run_id, accuracy in zip(run_ids, (0.7, 0.9, 0.8), strict=True):
        backend.wait_for_run(run_id, timeout=60, poll=0.2)
        backend.register_model(run_id=run_id, model_name="scored", tags={"accuracy": accuracy})
    best = backend.resolve_version("scored", best_by="accuracy")
    assert (best.version, best.tags["accuracy"]) == (2, 0.9)
    assert fake.sdk.Model.list.call_args.kwargs["tags"] == ["accuracy"]
    backend.register_model(run_id=run_ids[0], model_name="plain", tags={})
    backend.register_model(run_id=run_ids[1], model_name="plain", tags={})
    assert backend.resolve_version("plain", best_by="accuracy").version == 2


def test_upload_that_silently_dropped_files_fails(fake: FakeAzure, backend: AzureMLBackend, data_dir: Path) -> None:
    original = fake.datastore.upload.side_effect

    def lossy(src_dir: str, target_path: str | None = None, overwrite: bool = False, show_progress: bool = True):
        original(src_dir, target_path, overwrite, show_progress)
        (fake.container / target_path / "sub" / "b.txt").unlink()  # as the SDK does when it gives up

    fake.datastore.upload.side_effect = lossy
    with pytest.raises(BackendUnavailable, match=r"incomplete.*sub/b\.txt"):
        backend.upload_data(data_dir, target_path="test-data")
    assert backend.current_data("test-data") is None  # no version recorded for a broken upload


def test_v1_leaves_retries_to_azureml_core_and_maps_what_is_left(
    fake: FakeAzure, backend: AzureMLBackend, data_dir: Path
) -> None:
    """azureml-core's REST clients retry inside every call (_restclient.ClientBase): a second layer here would
    multiply its tries (issue 27, item 1). A transient failure that reaches us is given up at once."""
    calls: list[int] = []
    original = fake.datastore.upload.side_effect

    def throttled(*args: object, **kwargs: object) -> None:
        calls.append(1)
        raise Failing(503)

    fake.datastore.upload.side_effect = throttled
    with pytest.raises(BackendUnavailable, match=r"failed; last error: HTTP 503"):
        backend.upload_data(data_dir, target_path="test-data")
    assert len(calls) == 1
    fake.datastore.upload.side_effect = original
    assert backend.upload_data(data_dir, target_path="test-data").files == 2
    fake.datastore.upload.side_effect = Failing(403)
    with pytest.raises(Failing):  # not transient: no retry
        backend.upload_data(data_dir, target_path="test-data")


def test_retry_backs_off_exponentially() -> None:
    delays: list[float] = []
    calls = iter([Failing(429), Failing(500), "ok"])

    def call() -> str:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert with_retry("x", call, base_delay=1.0, sleep=delays.append) == "ok"
    assert delays == [1.0, 2.0]


def test_reattach_after_restart_by_run_id_and_job_tag(
    fake: FakeAzure, azure_settings: Settings, data_dir: Path
) -> None:
    first = fake.backend(azure_settings)
    first.upload_data(data_dir, target_path="test-data")
    run_id = first.submit_run(spec(tags={"job_id": "run_abc"}))
    again = fake.backend(azure_settings)  # a new process: nothing in memory
    assert again.find_runs("tests", tag="job_id", value="run_abc") == [run_id]
    assert again.wait_for_run(run_id, timeout=60, poll=0.2).status == RunStatus.COMPLETED
    assert again.get_run(run_id).data_version.startswith("sha256:")
    assert again.get_run(run_id).studio_url.startswith(f"https://ml.azure.com/runs/{run_id}?wsid=")  # get_portal_url


def test_connect_chooses_auth_and_hides_secrets(
    fake: FakeAzure, azure_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_TENANT_ID", "tenant")
    monkeypatch.setenv("AZURE_CLIENT_ID", "client")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    backend = AzureMLBackend(azure_settings, sdk=fake.sdk, retry_delay=0.0)
    assert backend.workspace is fake.workspace
    kwargs = fake.sdk.Workspace.get.call_args.kwargs
    assert (kwargs["name"], kwargs["subscription_id"], kwargs["resource_group"]) == ("ws-1", "sub-1", "rg-1")
    assert type(kwargs["auth"]).__name__ == "ServicePrincipalAuthentication"

    fake.sdk.Workspace.get.side_effect = Exception(f"AADSTS7000215: invalid secret {SECRET}")
    failing = AzureMLBackend(azure_settings, sdk=fake.sdk, retry_delay=0.0)
    with pytest.raises(BackendUnavailable) as caught:
        _ = failing.workspace
    message = str(caught.value)
    assert "'ws-1'" in message and "service principal" in message and "AADSTS7000215" in message
    assert SECRET not in message


def test_auth_order_and_clear_refusals(azure_settings: Settings) -> None:
    with pytest.raises(ConfigError, match="AZURE_CLIENT_SECRET"):
        choose_auth(azure_settings, {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c"})
    with pytest.raises(ConfigError, match="AZML_AUTH=msi, cli or interactive"):
        choose_auth(azure_settings, {})
    method, _ = choose_auth(azure_settings.model_copy(update={"auth": "msi"}), {})
    assert method == "managed identity"
    with pytest.raises(BackendUnavailable, match="azure-cli"):
        choose_auth(azure_settings.model_copy(update={"auth": "cli"}), {})


def test_an_auth_failure_reading_a_run_says_so_not_run_not_found(fake: FakeAzure, backend: AzureMLBackend) -> None:
    """v1 used to turn every non-transient error into 'run not found'; now both SDKs share one mapping."""
    from azureml.exceptions import AuthenticationException

    from amllib.errors import BackendUnavailable, RunNotFound

    fake.workspace.get_run.side_effect = AuthenticationException("token expired for the service principal")
    with pytest.raises(BackendUnavailable, match="could not authenticate to workspace") as caught:
        backend.get_run("some-run")
    assert not isinstance(caught.value, RunNotFound)
    fake.workspace.get_run.side_effect = fake._get_run
    with pytest.raises(RunNotFound):
        backend.get_run("no-such-run")  # run history's 404


@pytest.mark.parametrize("name", ["gpu_cluster", "c", "9cluster", "cluster.v2", "a" * 17])
def test_a_compute_name_azure_refuses_is_refused_up_front(fake: FakeAzure, backend: AzureMLBackend, name: str) -> None:
    with pytest.raises(InvalidInput, match="2 to 16"):
        backend.ensure_compute(name)
    fake.sdk.ComputeTarget.assert_not_called()


def test_a_missing_model_version_is_model_not_found(backend: AzureMLBackend, tmp_path: Path) -> None:
    from amllib.errors import ModelNotFound

    with pytest.raises(ModelNotFound):
        backend.download_model("nope", 1, tmp_path / "out")
