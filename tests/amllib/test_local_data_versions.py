"""Local data versions: a run keeps the data it was given until it ends, and nothing outlives its use."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from amllib.backends.base import RunSpec, RunStatus
from amllib.backends.local import LocalBackend
from amllib.digest import tree_digest
from amllib.settings import Settings


@pytest.fixture
def backend(settings: Settings) -> LocalBackend:
    return LocalBackend(settings)


def spec(script: str = "aml_v1_logging.py", **kwargs: object) -> RunSpec:
    return RunSpec(script=script, experiment="tests", datapath="test-data", compute="local-cluster", **kwargs)


def version_folders(backend: LocalBackend) -> list[str]:
    return sorted(p.name for p in backend.datastore.versions.iterdir() if re.fullmatch(r"[0-9a-f]{32}", p.name))


def newer_data(tmp_path: Path, name: str = "newer") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "only.csv").write_text(name)
    return folder


def test_an_upload_during_the_submit_does_not_remove_the_runs_data(
    backend: LocalBackend, data_dir: Path, tmp_path: Path
) -> None:
    """The race seen under load: an upload landed between reading the data path and recording the run."""
    old = backend.upload_data(data_dir, target_path="test-data")
    start = backend.compute.start

    def start_after_an_upload(*args: object, **kwargs: object) -> str:
        backend.upload_data(newer_data(tmp_path), target_path="test-data")
        return start(*args, **kwargs)

    backend.compute.start = start_after_an_upload  # type: ignore[method-assign]
    run_id = backend.submit_run(spec())
    info = backend.wait_for_run(run_id, timeout=120, poll=0.2)
    assert info.status == RunStatus.COMPLETED, backend.get_log(run_id)
    assert "data files: ['a.csv', 'sub']" in backend.get_log(run_id)
    assert info.data_version == old.digest


def test_a_replaced_version_is_freed_when_its_last_run_ends(
    backend: LocalBackend, data_dir: Path, tmp_path: Path
) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec("sleep_and_record.py", args={"seconds": "2"}))
    current = backend.upload_data(newer_data(tmp_path), target_path="test-data")
    assert len(version_folders(backend)) == 2  # the run still reads the old one
    assert backend.wait_for_run(run_id, timeout=60, poll=0.2).status == RunStatus.COMPLETED
    folders = version_folders(backend)
    assert len(folders) == 1
    assert tree_digest(backend.datastore.versions / folders[0]).digest == current.digest
    assert not list(backend.datastore.versions.glob(".trash-*"))


def test_versions_nothing_references_are_collected_even_if_nobody_watched_the_run(
    backend: LocalBackend, data_dir: Path, tmp_path: Path
) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec("no_accuracy.py"))
    run_dir = backend.compute.run_dir(run_id)
    deadline = time.time() + 60
    while '"Completed"' not in (run_dir / "state.json").read_text() and time.time() < deadline:
        time.sleep(0.1)  # watched on disk only: get_run (which releases) is never called
    for index in range(3):
        backend.upload_data(newer_data(tmp_path, f"v{index}"), target_path="test-data")
    assert len(version_folders(backend)) == 1


def test_a_submit_that_fails_midway_leaves_no_run_folder_and_no_lease(
    backend: LocalBackend, data_dir: Path, tmp_path: Path
) -> None:
    backend.upload_data(data_dir, target_path="test-data")

    def broken(*args: object, staging: Path, **kwargs: object) -> None:
        (staging / "work").mkdir(parents=True)
        raise OSError(28, "No space left on device")

    backend.compute._prepare = broken  # type: ignore[method-assign]
    with pytest.raises(OSError):
        backend.submit_run(spec())
    assert not list(backend.compute.runs_root.glob(".*.partial"))
    assert not list(backend.datastore.versions.glob("*.leases/*"))
    backend.upload_data(newer_data(tmp_path), target_path="test-data")
    assert len(version_folders(backend)) == 1


def test_half_written_run_folders_of_a_killed_submit_are_discarded(backend: LocalBackend) -> None:
    partial = backend.compute.runs_root / ".tests_1_deadbeef.partial"
    (partial / "work").mkdir(parents=True)
    fresh = backend.compute.runs_root / ".tests_2_cafebabe.partial"
    fresh.mkdir()
    old = time.time() - 7200
    os.utime(partial, (old, old))
    backend.discard_stale_staging(keep=set())
    assert not partial.exists() and fresh.exists()  # a submit in progress is left alone
