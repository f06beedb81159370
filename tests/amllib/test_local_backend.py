"""What only the embedded local backend promises: atomic uploads, queueing, detached runs."""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from amllib.backends import local_compute
from amllib.backends.base import RunSpec, RunStatus
from amllib.backends.local import LocalBackend
from amllib.digest import tree_digest
from amllib.settings import REPO_ROOT, Settings
from amllib.training import finish_run
from tests.conftest import make_settings, run_script, script_env


@pytest.fixture
def backend(settings: Settings) -> LocalBackend:
    """These tests are about the local backend only (the contract suite covers both)."""
    return LocalBackend(settings)


def spec(script: str, **kwargs: object) -> RunSpec:
    return RunSpec(script=script, experiment="tests", datapath="test-data", compute="local-cluster", **kwargs)


def test_upload_replaces_the_old_data_whole(backend: LocalBackend, data_dir: Path, tmp_path: Path) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "only.csv").write_text("new")
    data = backend.upload_data(newer, target_path="test-data")
    folder, current = backend.datastore.current("test-data")
    assert sorted(p.name for p in folder.iterdir()) == ["only.csv"]
    assert current == data
    assert len([p for p in backend.datastore.versions.iterdir() if p.is_dir()]) == 1  # old version pruned


def test_upload_failing_midway_leaves_the_old_data(settings: Settings, data_dir: Path, tmp_path: Path) -> None:
    backend = LocalBackend(settings)
    old = backend.upload_data(data_dir, target_path="test-data")
    big = tmp_path / "big"
    big.mkdir()
    (big / "a.bin").write_bytes(os.urandom(256 * 1024))
    (big / "b.bin").write_bytes(os.urandom(4 * 1024 * 1024))

    def limit_file_size() -> None:  # the copy of b.bin fails halfway with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, 1024 * 1024))

    result = run_script(
        "upload-data.py", "--data-dir", str(big), env=script_env(settings), cwd=tmp_path, preexec_fn=limit_file_size
    )
    assert result.returncode == 1
    assert "File too large" in result.stderr and "Traceback" not in result.stderr
    folder, current = backend.datastore.current("test-data")
    assert current == old
    assert tree_digest(folder).digest == old.digest


def test_all_missing_variables_are_named_at_once(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZML_")}
    env["AZML_HOME"] = str(tmp_path / "aml")
    result = run_script("run-training.py", env=env, cwd=tmp_path)
    assert result.returncode == 1
    for name in ("AZML_MODEL", "AZML_EXPERIMENT", "AZML_DATAPATH", "AZML_SCRIPT", "AZML_COMPUTE_NAME"):
        assert name in result.stderr
    assert "AZML_SUBID" not in result.stderr  # the local backend needs no Azure identity
    assert "Traceback" not in result.stderr
    env["AZML_BACKEND"] = "azureml"
    result = run_script("upload-data.py", "--data-dir", ".", env=env, cwd=tmp_path)
    assert result.returncode == 1
    for name in ("AZML_DATAPATH", "AZML_SUBID", "AZML_RESGRP", "AZML_WORKSPACE"):
        assert name in result.stderr


def test_concurrency_limit_holds(tmp_path: Path, data_dir: Path) -> None:
    backend = LocalBackend(make_settings(tmp_path / "aml", compute_max_nodes=2))
    backend.upload_data(data_dir, target_path="test-data")
    record = tmp_path / "record.txt"
    args = {"seconds": "3", "record": str(record)}
    run_ids = [backend.submit_run(spec("sleep_and_record.py", args=args)) for _ in range(4)]
    deadline = time.time() + 15  # a loaded machine may take a while to start the first two
    while time.time() < deadline:
        statuses = [backend.get_run(r).status for r in run_ids]
        if statuses.count(RunStatus.RUNNING) == 2:
            break
        time.sleep(0.1)
    assert statuses.count(RunStatus.RUNNING) == 2 and statuses.count(RunStatus.QUEUED) == 2, statuses
    for run_id in run_ids:
        assert backend.wait_for_run(run_id, timeout=60, poll=0.2).status == RunStatus.COMPLETED
    spans = [tuple(map(float, line.split())) for line in record.read_text().splitlines()]
    assert len(spans) == 4
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start < e) <= 2
    first_two = sorted(run_ids[:2])
    started = sorted(run_ids, key=lambda r: backend.get_run(r).started_at)
    assert sorted(started[:2]) == first_two  # queued runs start in submit order


def test_run_outlives_its_killed_caller(settings: Settings, data_dir: Path, tmp_path: Path) -> None:
    LocalBackend(settings).upload_data(data_dir, target_path="test-data")
    code = (
        "import os, sys\n"
        "from amllib.backends.local import LocalBackend\n"
        "from amllib.backends.base import RunSpec\n"
        "from tests.conftest import make_settings\n"
        f"b = LocalBackend(make_settings(__import__('pathlib').Path({str(settings.home)!r})))\n"
        "rid = b.submit_run(RunSpec(script='fail.py', experiment='tests', datapath='test-data', compute='c'))\n"
        "print(rid, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    caller = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert caller.returncode == -signal.SIGKILL
    run_id = caller.stdout.strip()
    backend = LocalBackend(settings)  # the caller comes back
    info = backend.wait_for_run(run_id, timeout=60, poll=0.2)
    assert info.status == RunStatus.FAILED
    assert info.exit_code == 3
    assert info.finished_at is not None and info.finished_at >= info.started_at


def test_a_vanished_runner_ends_the_run_failed_with_a_reason(backend: LocalBackend, data_dir: Path) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec("sleep_and_record.py", args={"seconds": "60"}))
    folder = backend.compute.run_dir(run_id)
    deadline = time.time() + 20
    while backend.get_run(run_id).status != RunStatus.RUNNING and time.time() < deadline:
        time.sleep(0.1)
    runner = int((folder / "runner.pid").read_text())
    os.killpg(runner, signal.SIGKILL)
    deadline = time.time() + 10
    while not backend.get_run(run_id).status.terminal and time.time() < deadline:
        time.sleep(0.1)
    info = backend.get_run(run_id)
    assert info.status == RunStatus.FAILED
    assert "runner process ended without recording a result" in info.error


def test_snapshot_keeps_what_ran_when_training_changes(tmp_path: Path, data_dir: Path) -> None:
    training = tmp_path / "training"
    training.mkdir()
    (training / "train.py").write_text("import os\nos.makedirs('outputs')\nopen('outputs/v.txt','w').write('one')\n")
    backend = LocalBackend(make_settings(tmp_path / "aml", training_dir=training))
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec("train.py"))
    (training / "train.py").write_text("raise SystemExit(9)\n")
    assert backend.wait_for_run(run_id, timeout=60, poll=0.2).status == RunStatus.COMPLETED
    version = finish_run(backend, run_id, model_name="snap").model_version
    assert version.script_digest.startswith("sha256:")
    backend.download_model("snap", 1, tmp_path / "out")
    assert (tmp_path / "out" / "v.txt").read_text() == "one"


def test_simultaneous_registrations_get_distinct_versions_once_per_run(backend: LocalBackend, data_dir: Path) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    run_ids = [backend.submit_run(spec("no_accuracy.py")) for _ in range(4)]
    for run_id in run_ids:
        assert backend.wait_for_run(run_id, timeout=60, poll=0.2).status == RunStatus.COMPLETED
    barrier = threading.Barrier(8)
    made: list[tuple[str, int]] = []

    def register(run_id: str) -> None:
        other = LocalBackend(backend.settings)  # its own connection, as another process would have
        barrier.wait()
        made.append((run_id, other.register_model(run_id=run_id, model_name="race", tags={}).version))

    threads = [threading.Thread(target=register, args=(run_id,)) for run_id in run_ids * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    by_run = {run_id: {v for r, v in made if r == run_id} for run_id in run_ids}
    assert all(len(versions) == 1 for versions in by_run.values())  # each run registered once
    assert sorted(v for (v,) in by_run.values()) == [1, 2, 3, 4]
    assert [v.version for v in backend.list_model_versions("race")] == [1, 2, 3, 4]


def test_generated_crime_data_trains_with_batcomputer_script(tmp_path: Path) -> None:
    data = tmp_path / "crime"
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "generate-crime-data.py"), "--rows", "3000", "--out", str(data)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    backend = LocalBackend(make_settings(tmp_path / "aml", training_dir=REPO_ROOT / "training"))
    backend.upload_data(data, target_path="crime")
    run_id = backend.submit_run(
        RunSpec(script="scikit-batcomputer.py", experiment="bat", datapath="crime", compute="c", estimators=10)
    )
    info = backend.wait_for_run(run_id, timeout=180, poll=0.3)
    assert info.status == RunStatus.COMPLETED, backend.get_log(run_id, tail=30)
    metrics = backend.get_metrics(run_id)
    assert 0.6 < metrics["accuracy"][-1] <= 1.0
    assert metrics["estimators"] == [10.0]
    index = list(backend.compute.run_dir(run_id).glob("mlruns/*/*/artifacts/crime_index.json"))
    assert len(index) == 1 and len(json.loads(index[0].read_text())["rows"]) > 10
    assert sorted(backend.list_run_outputs(run_id)) == ["flags.pkl", "lookup.pkl", "model.pkl"]


def test_metrics_file_survives_a_torn_last_line(backend: LocalBackend, data_dir: Path) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec("no_accuracy.py"))
    backend.wait_for_run(run_id, timeout=60, poll=0.2)
    path = backend.compute.run_dir(run_id) / "metrics.jsonl"
    path.write_text(json.dumps({"kind": "scalar", "name": "m", "value": 1}) + '\n{"kind": "sca')
    assert backend.get_metrics(run_id) == {"m": [1]}


def test_stale_staging_of_dead_uploads_is_discarded(backend: LocalBackend) -> None:
    dead, kept, fresh = (backend.staging_dir() for _ in range(3))
    for folder in (dead, kept):
        os.utime(folder, (time.time() - 7200, time.time() - 7200))
    assert backend.discard_stale_staging(keep={kept.resolve()}) == 1
    assert not dead.exists() and kept.exists() and fresh.exists()


def test_state_is_written_whole_by_threads_racing(tmp_path: Path) -> None:
    """The service's importer and a run's watcher may settle the same vanished run at the same moment."""
    from amllib.backends.local_runner import write_state

    (tmp_path / "state.json").write_text('{"status": "Running"}')
    errors: list[BaseException] = []

    def settle(index: int) -> None:
        try:
            for _ in range(50):
                write_state(tmp_path, status="Failed", by=index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=settle, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert json.loads((tmp_path / "state.json").read_text())["status"] == "Failed"


@pytest.mark.parametrize("max_nodes", [1, 2, 64])
def test_each_run_gets_its_share_of_the_cores(tmp_path: Path, data_dir: Path, max_nodes: int) -> None:
    backend = LocalBackend(make_settings(tmp_path / "aml", compute_max_nodes=max_nodes))
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec("cores.py"))
    assert backend.wait_for_run(run_id, timeout=60, poll=0.2).status == RunStatus.COMPLETED, backend.get_log(run_id)
    given = json.loads((backend.compute.run_dir(run_id) / "work" / "outputs" / "cores.json").read_text())
    share = max(1, len(os.sched_getaffinity(0)) // max_nodes)
    assert given["n_jobs_all"] == share  # n_jobs=-1 in the script means this run's share, not the machine
    assert set(given["env"].values()) == {str(share)}


def test_a_core_count_set_by_hand_wins(tmp_path: Path, data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    backend = LocalBackend(make_settings(tmp_path / "aml", compute_max_nodes=1))
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec("cores.py"))
    assert backend.wait_for_run(run_id, timeout=60, poll=0.2).status == RunStatus.COMPLETED
    given = json.loads((backend.compute.run_dir(run_id) / "work" / "outputs" / "cores.json").read_text())
    assert given["env"]["OMP_NUM_THREADS"] == "3"


def test_a_run_whose_submitter_died_before_launching_it_is_launched_once(
    backend: LocalBackend, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 between writing the run folder and starting its runner: whoever watches it next launches it."""
    backend.upload_data(data_dir, target_path="test-data")
    record = tmp_path / "ran.txt"
    launch = backend.compute._launch
    monkeypatch.setattr(backend.compute, "_launch", lambda folder: None)  # the submitter dies right here
    run_id = backend.submit_run(spec("sleep_and_record.py", args={"seconds": "0.2", "record": str(record)}))
    monkeypatch.setattr(local_compute, "RELAUNCH_AFTER", 0.3)
    monkeypatch.setattr(backend.compute, "_launch", launch)
    time.sleep(0.4)
    assert backend.get_run(run_id).status == RunStatus.QUEUED  # this read launches it
    launch(backend.compute.run_dir(run_id))  # and a second launch, racing it, does nothing
    info = backend.wait_for_run(run_id, timeout=60, poll=0.2)
    assert info.status == RunStatus.COMPLETED, backend.get_log(run_id)
    time.sleep(0.5)
    assert len(record.read_text().splitlines()) == 1  # the script ran once


def test_whole_lines_gives_a_line_longer_than_a_read_in_pieces() -> None:
    from amllib.backends.base import whole_lines

    assert whole_lines(b"ab\ncd", 10) == ("ab\n", 13)
    assert whole_lines(b"abcd", 10) == ("", 10)  # a short read without newline: wait for the rest
    assert whole_lines(b"abcd", 10, limit=4) == ("abcd", 14)  # a full read of one long line: send it
    text, offset = whole_lines("aé".encode()[:2], 0, limit=2)  # 'é' cut in half: keep its first byte back
    assert (text, offset) == ("a", 1)


def test_a_fetch_racing_another_to_the_same_folder_swaps_instead_of_failing(
    settings, data_dir, tmp_path, monkeypatch
) -> None:
    """Between `output_path.exists()` and the rename, another fetch could put its folder there (ENOTEMPTY)."""
    import json
    from pathlib import Path

    from amllib.backends import get_backend
    from amllib.fetch import fetch_model
    from amllib.training import spec_from_settings, train_and_register

    backend = get_backend(settings)
    backend.upload_data(data_dir, target_path=settings.datapath)
    train_and_register(backend, spec_from_settings(settings, estimators=2), model_name=settings.model, poll=0.2)
    target = tmp_path / "pickles"
    fetch_model(backend, name=settings.model, output_path=target)  # the other fetch's folder, already there
    real_exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda self: False if self == target else real_exists(self))
    result = fetch_model(backend, name=settings.model, output_path=target)  # sees "nothing there", then meets it
    assert json.loads((target / "metadata.json").read_text())["version"] == result.model.version
    assert not list(tmp_path.glob(".pickles.fetch-*"))


class CountingReader(io.BytesIO):
    """A log file that counts what is read of it."""

    read_bytes = 0

    def read(self, size: int | None = -1) -> bytes:
        block = super().read(size)
        self.read_bytes += len(block)
        return block


def test_a_tail_reads_a_bounded_amount_however_long_the_lines() -> None:
    """Issue 26, item 6: ?tail=N on a 30 MiB line re-joined and re-counted its blocks (quadratic, 7.8 s)."""
    from amllib.backends import local

    log = CountingReader(b"x" * (30 << 20) + "\n✓ last line\n".encode())
    tail = local._tail_lines(log, 2)
    assert log.read_bytes <= local._TAIL_MAX
    assert tail.endswith("\n✓ last line\n") and len(tail) <= local._TAIL_MAX
    short = CountingReader(b"".join(f"line {i}\n".encode() for i in range(100_000)))
    assert local._tail_lines(short, 3) == "line 99997\nline 99998\nline 99999\n"
    assert short.read_bytes <= 2 * local._TAIL_BLOCK
    cut = CountingReader(("é" * (5 << 20)).encode() + b"\nend\n")  # cut inside a two-byte character
    assert "\ufffd" not in local._tail_lines(cut, 5)
