"""The contract every backend keeps, run against each backend the `backend` fixture yields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amllib.backends.base import Backend, RunSpec, RunStatus
from amllib.digest import tree_digest
from amllib.errors import DataNotFound, InvalidInput, ModelNotFound, RunNotFound, UnsafePath
from amllib.fetch import fetch_model
from amllib.training import finish_run


def spec(script: str = "mlflow_logging.py", **kwargs: object) -> RunSpec:
    values = {"script": script, "experiment": "tests", "datapath": "test-data", "compute": "local-cluster"}
    values.update(kwargs)
    return RunSpec(**values)


def test_upload_records_the_content_digest(backend: Backend, data_dir: Path) -> None:
    data = backend.upload_data(data_dir, target_path="test-data")
    expected = tree_digest(data_dir)
    assert (data.digest, data.files, data.bytes) == (expected.digest, 2, expected.bytes)
    assert data.digest.startswith("sha256:")


@pytest.mark.parametrize("path", ["../outside", "/etc", "a/../../b", "", ".hidden"])
def test_upload_refuses_paths_that_leave_the_datastore(backend: Backend, data_dir: Path, path: str) -> None:
    with pytest.raises(InvalidInput):
        backend.upload_data(data_dir, target_path=path)


def test_upload_of_a_missing_folder_is_invalid(backend: Backend, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        backend.upload_data(tmp_path / "nope", target_path="test-data")


def test_run_without_data_is_refused(backend: Backend) -> None:
    with pytest.raises(DataNotFound, match="test-data"):
        backend.submit_run(spec())


@pytest.mark.parametrize("script", ["../fail.py", "/etc/passwd", "missing.py", "sub/x.py"])
def test_script_must_be_directly_inside_training(backend: Backend, data_dir: Path, script: str) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    with pytest.raises(InvalidInput):
        backend.submit_run(spec(script))


def test_unmodified_aml_v1_script_logs_become_metrics(backend: Backend, data_dir: Path) -> None:
    """Run.get_context().log() comes back on every backend; on v2 through MLflow, the workspace's one store.

    MLflow carries numbers only: tables and images a v1 script logs are metrics on local and v1, not on v2.
    """
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec("aml_v1_logging.py", estimators=7, args={"flavour": "salty"}))
    info = backend.wait_for_run(run_id, timeout=120, poll=0.2)
    assert info.status == RunStatus.COMPLETED, backend.get_log(run_id)
    metrics = backend.get_metrics(run_id)
    assert metrics["accuracy"] == [0.5, 0.93]
    assert metrics["estimators"] == [7]
    # Azure returns a log_list like a metric logged three times; either way the values come back in order.
    losses = metrics["losses"]
    assert (losses[0] if len(losses) == 1 else losses) == [0.9, 0.5, 0.25]
    if backend.name != "azureml-v2":
        assert metrics["table"] == [{"epoch": 1, "loss": 0.5}]
        assert "plot" in metrics
    assert backend.get_run(run_id).tags["flavour"] == "salty"
    assert "data files: ['a.csv', 'sub']" in backend.get_log(run_id)
    assert backend.list_run_outputs(run_id) == ["model.txt"]


def test_mlflow_logging_script_metrics_and_tags_are_read(backend: Backend, data_dir: Path, tmp_path: Path) -> None:
    """The style every backend reads: MLflow (on Azure the workspace is the tracking store)."""
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec("mlflow_logging.py", estimators=4, args={"flavour": "sweet"}))
    info = backend.wait_for_run(run_id, timeout=120, poll=0.2)
    assert info.status == RunStatus.COMPLETED, backend.get_log(run_id)
    metrics = backend.get_metrics(run_id)
    assert metrics["accuracy"] == [0.5, 0.93]
    assert metrics["estimators"] == [4] and metrics["loss"] == [0.25]
    assert backend.get_run(run_id).tags["flavour"] == "sweet"
    assert "data files: ['a.csv', 'sub']" in backend.get_log(run_id)
    assert backend.list_run_outputs(run_id) == ["model.txt"]
    assert backend.download_run_outputs(run_id, tmp_path / "outputs") == ["model.txt"]
    assert (tmp_path / "outputs" / "model.txt").read_text() == "sweet"
    with pytest.raises(RunNotFound):
        backend.download_run_outputs("no_such_run", tmp_path / "nothing")
    version = finish_run(backend, run_id, model_name="mlflow-model").model_version
    assert version is not None and version.tags == {"accuracy": 0.93}


def test_failed_run_reports_failure_and_log_tail(backend: Backend, data_dir: Path) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec("fail.py"))
    info = backend.wait_for_run(run_id, timeout=120, poll=0.2)
    assert info.status == RunStatus.FAILED
    assert info.error
    tail = backend.get_log(run_id, tail=3)
    assert "about to fail: the data is wrong" in tail
    assert "line 10" not in tail
    assert finish_run(backend, run_id, model_name="test-model").model_version is None
    assert backend.list_model_versions("test-model") == []


def test_two_runs_become_versions_one_and_two(backend: Backend, data_dir: Path, tmp_path: Path) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    versions = []
    for flavour in ("first", "second"):
        run_id = backend.submit_run(spec(args={"flavour": flavour}))
        assert backend.wait_for_run(run_id, timeout=120, poll=0.2).status == RunStatus.COMPLETED
        versions.append(finish_run(backend, run_id, model_name="test-model").model_version)
    assert [v.version for v in versions] == [1, 2]
    assert all(v.tags == {"accuracy": 0.93} for v in versions)
    assert [v.version for v in backend.list_model_versions("test-model")] == [1, 2]
    assert "test-model" in backend.list_models()
    assert backend.resolve_version("test-model").version == 2
    assert backend.resolve_version("test-model", version=1).version == 1
    with pytest.raises(ModelNotFound, match="no version 5"):
        backend.resolve_version("test-model", version=5)
    with pytest.raises(ModelNotFound):
        backend.resolve_version("no-such-model")

    result = fetch_model(backend, name="test-model", version=1, output_path=tmp_path / "out")
    assert (tmp_path / "out" / "model.txt").read_text() == "first"
    metadata = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert metadata["name"] == "test-model" and metadata["version"] == 1
    assert metadata["tags"] == {"accuracy": 0.93}
    assert metadata["run_id"] == versions[0].run_id
    assert metadata["data_version"] == tree_digest(data_dir).digest
    assert result.files == ["model.txt"]

    # over an existing folder: swapped whole (no stray file of before), and a killed attempt's sibling cleared
    (tmp_path / "out" / "stale.bin").write_bytes(b"from before")
    (tmp_path / ".out.fetch-job_1" / "half").mkdir(parents=True)
    fetch_model(backend, name="test-model", version=2, output_path=tmp_path / "out", attempt="job_1")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metadata.json", "model.txt"]
    assert (tmp_path / "out" / "model.txt").read_text() == "second"
    assert json.loads((tmp_path / "out" / "metadata.json").read_text())["version"] == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


def test_script_without_accuracy_registers_without_tag(backend: Backend, data_dir: Path) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec("no_accuracy.py"))
    assert backend.wait_for_run(run_id, timeout=120, poll=0.2).status == RunStatus.COMPLETED
    version = finish_run(backend, run_id, model_name="test-model").model_version
    assert version is not None and version.tags == {}
    chosen = backend.resolve_version("test-model", best_by="accuracy")
    assert chosen.version == version.version


def test_cancel_ends_a_run_canceled(backend: Backend, data_dir: Path) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec("sleep_and_record.py", args={"seconds": "60"}))
    backend.wait_for_run(run_id, timeout=5, poll=0.2)
    backend.cancel_run(run_id)
    info = backend.wait_for_run(run_id, timeout=30, poll=0.2)
    assert info.status == RunStatus.CANCELED


def test_unsafe_output_names_are_refused(backend: Backend) -> None:
    with pytest.raises(UnsafePath):
        backend.submit_run(spec("../../etc/passwd"))


def test_registering_a_run_again_returns_the_version_it_made(backend: Backend, data_dir: Path) -> None:
    """A crash between registering and recording it must not make a second version on retry."""
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec())
    assert backend.wait_for_run(run_id, timeout=120, poll=0.2).status == RunStatus.COMPLETED
    first = finish_run(backend, run_id, model_name="test-model").model_version
    again = finish_run(backend, run_id, model_name="test-model").model_version
    assert (first.version, again.version, again.run_id) == (1, 1, run_id)
    assert [v.version for v in backend.list_model_versions("test-model")] == [1]
    other = backend.register_model(run_id=run_id, model_name="other-model", tags={})
    assert other.version == 1  # once per model name, not once ever


@pytest.mark.parametrize(
    "args",
    [
        {"data-path": "/etc"},
        {"data_path": "/etc"},
        {"data": "/etc"},
        {"d": "/etc"},
        {"DATA-PATH": "/etc"},
        {"estimators": "9"},
        {"est": "9"},
        {"flavour": "x" * 5000},
        {"flavour": "a\x00b"},
        {f"k{i}": "v" for i in range(51)},
    ],
)
def test_args_cannot_set_the_data_path_or_estimators(backend: Backend, data_dir: Path, args: dict) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    with pytest.raises(InvalidInput):
        backend.submit_run(spec(args=args))


def test_an_arg_value_is_never_read_as_an_option(backend: Backend, data_dir: Path) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    run_id = backend.submit_run(spec(estimators=3, args={"flavour": "--data-path=/etc"}))
    assert backend.wait_for_run(run_id, timeout=120, poll=0.2).status == RunStatus.COMPLETED, backend.get_log(run_id)
    assert backend.get_run(run_id).tags["flavour"] == "--data-path=/etc"
    assert "data files: ['a.csv', 'sub']" in backend.get_log(run_id)  # it read the datastore, not /etc
    assert backend.get_metrics(run_id)["estimators"] == [3]


def test_runs_started_anywhere_are_listed_with_what_they_were_given(backend: Backend, data_dir: Path) -> None:
    backend.upload_data(data_dir, target_path="test-data")
    first = backend.submit_run(spec(estimators=4, args={"flavour": "x"}, tags={"started_by": "someone"}))
    second = backend.submit_run(spec("no_accuracy.py"))
    for run_id in (first, second):
        assert backend.wait_for_run(run_id, timeout=120, poll=0.2).status == RunStatus.COMPLETED
    listed = backend.list_runs()
    assert {r.run_id for r in listed} == {first, second}
    assert [r.created_at for r in listed] == sorted(r.created_at for r in listed)
    info = next(r for r in listed if r.run_id == first)
    assert (info.experiment, info.script, info.datapath) == ("tests", "mlflow_logging.py", "test-data")
    assert (info.estimators, info.args, info.tags["started_by"]) == (4, {"flavour": "x"}, "someone")
    assert info.status == RunStatus.COMPLETED
    assert backend.list_runs(created_after=max(r.created_at for r in listed)) == []
    made = finish_run(backend, first, model_name="test-model").model_version
    assert [(v.name, v.version) for v in backend.versions_of_run(first)] == [("test-model", made.version)]
    assert backend.versions_of_run(second) == []


def test_the_datastore_paths_are_listed_with_their_data_version(backend: Backend, data_dir: Path) -> None:
    assert backend.list_data() == []
    first = backend.upload_data(data_dir, target_path="test-data")
    nested = backend.upload_data(data_dir, target_path="team/nightly")
    again = backend.upload_data(data_dir / "sub", target_path="test-data")
    listed = backend.list_data()
    assert [d.path for d in listed] == ["team/nightly", "test-data"]
    assert listed == [nested, again] and again.digest != first.digest
