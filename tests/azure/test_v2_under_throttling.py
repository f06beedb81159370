"""The azureml-v2 backend against Azure as it is on a bad day (issue 27), through the real MLClient on replayed
REST (tests/azure/replay.py): throttling with Retry-After, timeouts, a long job history in pages, cancels
that are operations, cluster creations that fail, MLflow that refuses.

Each test counts the requests the real SDK sent: what a throttled subscription's budget pays.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any
from unittest.mock import create_autospec

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED, RESOURCE_DOES_NOT_EXIST
from mlflow.tracking import MlflowClient

from amllib.backends.azure.retry import ATTEMPTS
from amllib.backends.base import RunStatus
from amllib.errors import BackendUnavailable, MetricsUnavailable
from tests.azure.replay import ARM, PAGE, Unrecorded, Workspace, replay_settings, replayed_backend

JOB = "azml-run_1"


@pytest.fixture
def workspace() -> Workspace:
    found = Workspace()
    found.add_job(JOB, status="Running", tags={"job_id": "run_1"})
    return found


def gets(workspace: Workspace, path: str) -> int:
    return sum(1 for method, sent in workspace.requests if method == "GET" and sent == path)


def test_a_job_throttled_for_ever_costs_a_handful_of_requests_then_backend_unavailable(
    tmp_path: Path, workspace: Workspace
) -> None:
    """Before: azure-core's 10 retries inside each of our 5 tries sent 20 GETs over 19 s."""
    slept: list[float] = []
    backend = replayed_backend(replay_settings(tmp_path), workspace, retry_sleep=slept.append)
    workspace.fault("GET", rf"{ARM}/jobs/{JOB}", 429, {"Retry-After": "1"}, times=None)
    with pytest.raises(BackendUnavailable, match=f"failed {ATTEMPTS} times.*429"):
        backend.get_run(JOB)
    assert gets(workspace, f"{ARM}/jobs/{JOB}") == ATTEMPTS
    assert slept == [1.0] * (ATTEMPTS - 1)  # what Azure asked, each time


def test_a_429_then_an_answer_waits_what_azure_asked_once(tmp_path: Path, workspace: Workspace) -> None:
    slept: list[float] = []
    backend = replayed_backend(replay_settings(tmp_path), workspace, retry_sleep=slept.append)
    workspace.fault("GET", rf"{ARM}/jobs/{JOB}", 429, {"Retry-After": "7"}, times=1)
    assert backend.get_run(JOB).status == RunStatus.RUNNING
    assert gets(workspace, f"{ARM}/jobs/{JOB}") == 2 and slept == [7.0]
    workspace.fault("GET", rf"{ARM}/jobs/{JOB}", 503, {}, times=1)  # no Retry-After: our own back-off
    assert backend.get_run(JOB).status == RunStatus.RUNNING and slept[-1] == 0.0  # retry_delay=0 in tests


def test_a_wait_past_the_calls_budget_is_not_waited(tmp_path: Path, workspace: Workspace) -> None:
    """ARM throttling asks tens of seconds: a call whose budget that passes gives up at once, saying so."""
    slept: list[float] = []
    settings = replay_settings(tmp_path, azure_retry_seconds=30)
    backend = replayed_backend(settings, workspace, retry_sleep=slept.append)
    workspace.fault("GET", rf"{ARM}/jobs/{JOB}", 429, {"Retry-After": "120"}, times=None)
    with pytest.raises(BackendUnavailable, match=r"Azure asked to wait 120 s, past the 30 s"):
        backend.get_run(JOB)
    assert gets(workspace, f"{ARM}/jobs/{JOB}") == 1 and slept == []


def test_every_request_carries_the_configured_timeouts(tmp_path: Path, workspace: Workspace) -> None:
    settings = replay_settings(tmp_path, azure_connect_timeout=4, azure_read_timeout=25)
    backend = replayed_backend(settings, workspace)
    backend.get_run(JOB)
    backend.ensure_compute("cpu-cluster") if "cpu-cluster" in workspace.computes else None
    assert workspace.timeouts and set(workspace.timeouts) == {(4.0, 25.0)}  # azure-core's default: (300, 300)


class BlackHole:
    """A TCP server that takes connections and never answers: a network that swallows requests."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        self.server.close()
        for connection in self.held:
            connection.close()


class ToBlackHole(requests.Session):
    """A real requests session whose every request goes to the black hole, with the timeouts it was given."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        path = url.split("/", 3)[3]
        return super().request(method, f"http://127.0.0.1:{self.port}/{path}", *args, **kwargs)


def test_a_black_holed_network_fails_a_call_in_bounded_time(tmp_path: Path) -> None:
    """A real socket that never answers: each try ends at the read timeout, the call after ATTEMPTS tries."""
    hole = BlackHole()
    try:
        settings = replay_settings(tmp_path, azure_read_timeout=0.3, azure_connect_timeout=0.3)
        backend = replayed_backend(settings, Workspace(), session=ToBlackHole(hole.port), retry_sleep=lambda s: None)
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match=f"failed {ATTEMPTS} times"):
            backend.get_run(JOB)
        took = time.monotonic() - started
        assert len(hole.held) == ATTEMPTS  # one connection a try: no hidden retries below ours
        assert took < 30, took  # 4 × 0.3 s read timeouts, not 4 × 300 s
    finally:
        hole.close()


def test_the_importer_reads_the_newest_pages_not_the_history(tmp_path: Path, workspace: Workspace) -> None:
    """300 jobs of history and 3 new ones: a pass after the first reads one page, not four (bench.azure_requests
    measures 10,000)."""
    now = time.time()
    workspace.add_history(300, start=now - 40 * 86400, step=60.0)
    backend = replayed_backend(replay_settings(tmp_path), workspace)
    listing = f"{ARM}/jobs"
    first = backend.list_runs(created_after=0.0, limit=5_000)  # the first pass reads it all
    pages_first = gets(workspace, listing)
    assert len(first) == 301 and pages_first == (301 + PAGE - 1) // PAGE
    mark = max(info.created_at for info in first)
    for index in range(3):
        workspace.add_job(f"azml-new-{index}", status="Running", created=time.time() + index)
    new = backend.list_runs(created_after=mark)
    assert sorted(info.run_id for info in new) == ["azml-new-0", "azml-new-1", "azml-new-2"]
    assert gets(workspace, listing) - pages_first == 1  # one page: the new jobs and the newest old ones


def test_a_whole_listing_comes_back_every_hour_for_what_the_order_would_hide(
    tmp_path: Path, workspace: Workspace
) -> None:
    workspace.add_history(2 * PAGE, start=time.time() - 86400)
    backend = replayed_backend(replay_settings(tmp_path), workspace)
    backend.list_runs(created_after=0.0)
    before = gets(workspace, f"{ARM}/jobs")
    backend._listed_whole -= 3601  # an hour later
    backend.list_runs(created_after=time.time())
    assert gets(workspace, f"{ARM}/jobs") - before == 3  # every page again


def test_a_cancel_is_one_request_and_keeps_no_poller(tmp_path: Path, workspace: Workspace) -> None:
    backend = replayed_backend(replay_settings(tmp_path), workspace)
    threads = threading.active_count()
    backend.cancel_run(JOB)
    assert ("POST", f"{ARM}/jobs/{JOB}/cancel") in workspace.requests
    assert [r for r in workspace.requests if "operations/cancel" in r[1]] == []  # its operation is not polled
    assert threading.active_count() == threads  # azure-core's poller thread would poll every 30 s for an hour
    assert workspace.jobs[JOB]["properties"]["status"] == "CancelRequested"
    assert backend.get_run(JOB).status == RunStatus.RUNNING  # until Azure says Canceled
    workspace.jobs[JOB]["properties"]["status"] = "Canceled"
    assert backend.get_run(JOB).status == RunStatus.CANCELED


def test_a_run_that_ends_between_the_read_and_the_cancel_is_left_alone(tmp_path: Path, workspace: Workspace) -> None:
    backend = replayed_backend(replay_settings(tmp_path), workspace)
    original = workspace.cancel_job

    def ended_meanwhile(match: Any, query: dict, body: Any) -> Any:
        workspace.jobs[JOB]["properties"]["status"] = "Completed"
        return original(match, query, body)  # Azure refuses a cancel of an ended job (templated 400)

    workspace.routes = [(m, p, ended_meanwhile if h == original else h) for m, p, h in workspace.routes]
    backend.cancel_run(JOB)  # no error: the contract leaves a finished run alone
    workspace.jobs[JOB]["properties"]["status"] = "Completed"
    requests_before = len(workspace.requests)
    backend.cancel_run(JOB)
    assert [r for r in workspace.requests[requests_before:] if r[0] == "POST"] == []  # ended: nothing sent


def test_a_cluster_creation_that_fails_says_why(tmp_path: Path, workspace: Workspace, monkeypatch) -> None:
    from azure.core.pipeline.transport import RequestsTransport

    polled: list[float] = []  # the SDK's poller waits 30 s between polls: the test keeps the states, not the wait
    monkeypatch.setattr(RequestsTransport, "sleep", lambda self, seconds: polled.append(seconds))
    backend = replayed_backend(replay_settings(tmp_path), workspace)
    workspace.compute_outcome = "Failed"
    with pytest.raises(BackendUnavailable, match="quota"):
        backend.ensure_compute("new-cluster")
    assert workspace.compute_polls["new-cluster"] >= 2 and polled  # InProgress seen, then the failure
    workspace.compute_outcome = "Succeeded"
    assert backend.ensure_compute("other-cluster") == "other-cluster"
    assert "other-cluster" in workspace.computes


def test_mlflow_refusing_is_not_no_metrics(tmp_path: Path, workspace: Workspace) -> None:
    mlflow = create_autospec(MlflowClient, instance=True)
    backend = replayed_backend(replay_settings(tmp_path), workspace, mlflow_client=mlflow)
    mlflow.get_run.side_effect = MlflowException("no run", error_code=RESOURCE_DOES_NOT_EXIST)
    assert backend.get_metrics(JOB) == {}  # nothing logged yet: no metrics, truly
    mlflow.get_run.side_effect = MlflowException(
        "Forbidden: the identity lacks permission", error_code=PERMISSION_DENIED
    )
    with pytest.raises(MetricsUnavailable, match="refused: Forbidden"):
        backend.get_metrics(JOB)
    workspace.jobs[JOB]["properties"]["status"] = "Completed"
    info = backend.get_run(JOB)  # the run is still read: its MLflow times are what is missing
    assert info.status == RunStatus.COMPLETED and info.started_at is None


def test_a_datastore_and_its_secret_are_read_once_for_many_log_reads(tmp_path: Path, workspace: Workspace) -> None:
    """Each log read cost a datastore GET and a listSecrets POST (an ARM write-quota call)."""

    class Logs:
        def __init__(self) -> None:
            self.made = 0

        def __call__(self, account_url: str, container_name: str, credential: Any = None, **options: Any) -> Any:
            self.made += 1
            assert options["retry_total"] == 0
            return _LogContainer()

    made = Logs()
    backend = replayed_backend(replay_settings(tmp_path), workspace, container_client=made)
    for _ in range(20):
        assert backend.get_log(JOB, tail=5) == "line\n"
    secrets = [r for r in workspace.requests if r[1].endswith("/listSecrets")]
    assert len(secrets) == 1 and made.made == 1


class _LogContainer:
    def list_blobs(self, name_starts_with: str | None = None, **kwargs: Any) -> list:
        return [_Blob(f"{name_starts_with}std_log.txt")]

    def get_blob_client(self, name: str) -> Any:
        return _LogBlob()


class _Blob:
    def __init__(self, name: str) -> None:
        self.name, self.size = name, 5


class _LogBlob:
    def download_blob(self, **kwargs: Any) -> Any:
        return _Downloaded()


class _Downloaded:
    def readall(self) -> bytes:
        return b"line\n"


def test_an_unrecorded_request_fails_the_test_not_a_quiet_404(tmp_path: Path, workspace: Workspace) -> None:
    backend = replayed_backend(replay_settings(tmp_path), workspace)
    with pytest.raises(Unrecorded, match="no recording for GET"):
        backend.client.workspaces.get("ws")


def test_a_version_another_process_took_meanwhile_is_skipped_not_an_outage(
    tmp_path: Path, workspace: Workspace
) -> None:
    """Azure answers a PUT of a taken version with another path 400 "Asset paths cannot be updated.", which the
    SDK raises as AssetPathException (no status): that is a collision (try the next number), not BackendUnavailable."""
    backend = replayed_backend(replay_settings(tmp_path), workspace)
    workspace.jobs[JOB]["properties"]["status"] = "Completed"
    workspace.job_outputs.update({JOB, "azml-other"})
    original = workspace.list_model_versions
    calls = []

    def another_process_registers_first(match: Any, query: dict, body: Any) -> Any:
        answer = original(match, query, body)
        calls.append(1)
        if len(calls) == 2:  # right after the look that picks a number, another process takes version 1
            workspace.add_model_version("titanic", 1, tags={}, properties={"run_id": "azml-other"})
            workspace.models["titanic"][-1]["properties"]["modelUri"] = (
                "azureml://jobs/azml-other/outputs/artifacts/paths/outputs/"
            )
        return answer

    workspace.routes = [(m, p, another_process_registers_first if h == original else h) for m, p, h in workspace.routes]
    backend.list_run_outputs = lambda run_id: ["model.pkl"]  # type: ignore[method-assign]  (the artifact store)
    made = backend.register_model(run_id=JOB, model_name="titanic", tags={"accuracy": 0.8})
    assert made.version == 2 and made.run_id == JOB
    assert [v["name"] for v in workspace.models["titanic"]] == ["1", "2"]
