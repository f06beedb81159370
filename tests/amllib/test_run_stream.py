"""amllib/run_stream.py: a run's status changes and log lines while waiting, on the local backend for real
(tests/test_scripts.py watches run-training.py do it)."""

from __future__ import annotations

from pathlib import Path

from amllib.backends import get_backend
from amllib.errors import BackendUnavailable
from amllib.run_stream import RunStream, elapsed
from amllib.training import spec_from_settings
from tests.conftest import make_settings


def test_elapsed_reads_as_a_clock() -> None:
    assert [elapsed(s) for s in (0, 65.9, 3600, 3725)] == ["00:00", "01:05", "1:00:00", "1:02:05"]


def test_every_log_line_once_in_order_and_a_log_that_fails_to_read_does_not_end_the_wait(
    tmp_path: Path, data_dir: Path
) -> None:
    settings = make_settings(tmp_path / "aml", script="slow_accuracy.py")
    backend = get_backend(settings)
    backend.upload_data(data_dir, target_path=settings.datapath)
    run_id = backend.submit_run(spec_from_settings(settings, args={"seconds": "2"}))
    said: list[str] = []
    failures = iter([BackendUnavailable("storage said 503")])
    read_log = backend.read_log

    def flaky_read_log(run: str, offset: int) -> tuple[str, int]:
        failure = next(failures, None)
        if failure:
            raise failure
        return read_log(run, offset)

    backend.read_log = flaky_read_log  # type: ignore[method-assign]
    info = RunStream(backend, run_id, say=said.append, poll=0.2).wait(timeout=120)
    assert info.status == "Completed"
    assert [line for line in said if line.startswith("epoch")] == [f"epoch {n} of 4" for n in range(1, 5)]
    assert said[0].startswith("### [00:00] run ") and said[0].endswith((" is Queued", " is Running"))
    assert sum("could not be read" in line for line in said) == 1
    assert said.index("epoch 4 of 4") < said.index("done")  # the lines written after the last status too


def test_a_timeout_returns_the_run_as_it_is(tmp_path: Path, data_dir: Path) -> None:
    settings = make_settings(tmp_path / "aml", script="slow_accuracy.py")
    backend = get_backend(settings)
    backend.upload_data(data_dir, target_path=settings.datapath)
    run_id = backend.submit_run(spec_from_settings(settings, args={"seconds": "5"}))
    info = RunStream(backend, run_id, say=lambda line: None, poll=0.1, logs=False).wait(timeout=0.5)
    assert not info.status.terminal
    backend.cancel_run(run_id)
    backend.wait_for_run(run_id, timeout=60)
