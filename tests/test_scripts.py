"""The three seed scripts, run as a pipeline would run them, on the real Titanic data."""

from __future__ import annotations

import json
from pathlib import Path

from amllib.settings import REPO_ROOT
from tests.conftest import TITANIC, make_settings, run_script, script_env


def test_titanic_upload_train_twice_fetch(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "aml",
        training_dir=REPO_ROOT / "training",
        script="scikit-titanic.py",
        datapath="titanic-data",
        model="titanic-model",
    )
    github_output = tmp_path / "github_output"
    env = script_env(settings, GITHUB_OUTPUT=str(github_output))

    upload = run_script("upload-data.py", "--data-dir", str(TITANIC), env=env, cwd=tmp_path)
    assert upload.returncode == 0, upload.stderr
    accuracies = []
    for estimators in ("3", "60"):
        run = run_script("run-training.py", "--estimators", estimators, env=env, cwd=tmp_path)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "##vso[task.setvariable variable=AZML_MODEL_VER]" in run.stdout
        accuracies.append(float(next(line for line in run.stdout.splitlines() if "accuracy =" in line).split()[-1]))
    assert accuracies[0] != accuracies[1]
    best = 1 + accuracies.index(max(accuracies))

    out = tmp_path / "model-api" / "pickles"
    fetched = run_script("fetch-model.py", "--use-best", "--output-path", str(out), env=env, cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    assert f"##vso[task.setvariable variable=AZML_MODEL_VER]{best}" in fetched.stdout
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["version"] == best
    assert metadata["tags"]["accuracy"] == max(accuracies)
    assert sorted(p.name for p in out.iterdir()) == ["flags.pkl", "lookup.pkl", "metadata.json", "model.pkl"]

    latest = run_script("fetch-model.py", "--output-path", str(tmp_path / "latest"), env=env, cwd=tmp_path)
    assert json.loads((tmp_path / "latest" / "metadata.json").read_text())["version"] == 2, latest.stderr
    first = run_script("fetch-model.py", "--model-ver", "1", "--output-path", str(out), env=env, cwd=tmp_path)
    assert first.returncode == 0 and json.loads((out / "metadata.json").read_text())["version"] == 1
    assert github_output.read_text().splitlines()[-1] == "model_version=1"

    unknown = run_script("fetch-model.py", "--model-ver", "7", "--output-path", str(out), env=env, cwd=tmp_path)
    assert unknown.returncode == 1
    place = f"(looked in the local backend, AZML_HOME={tmp_path / 'aml'})"
    assert unknown.stderr.strip() == f"ERROR! model 'titanic-model' has no version 7 (latest is 2) {place}"
    assert json.loads((out / "metadata.json").read_text())["version"] == 1  # left as it was

    env["AZML_MODEL"] = "never-registered"
    missing = run_script("fetch-model.py", "--output-path", str(out), env=env, cwd=tmp_path)
    assert missing.returncode == 1 and missing.stderr.strip() == f"ERROR! model 'never-registered' not found {place}"
    del env["AZML_MODEL"]
    unset = run_script("fetch-model.py", "--output-path", str(out), env=env, cwd=tmp_path)
    assert unset.returncode == 1 and "AZML_MODEL" in unset.stderr
    assert "no .env file read (AZML_ENV_FILE=none)" in unset.stderr


def test_use_best_without_accuracy_falls_back_to_latest(tmp_path: Path, data_dir: Path) -> None:
    settings = make_settings(tmp_path / "aml", script="no_accuracy.py")
    env = script_env(settings)
    assert run_script("upload-data.py", "--data-dir", str(data_dir), env=env, cwd=tmp_path).returncode == 0
    for _ in range(2):
        assert run_script("run-training.py", env=env, cwd=tmp_path).returncode == 0
    fetched = run_script("fetch-model.py", "--use-best", "--output-path", str(tmp_path / "o"), env=env, cwd=tmp_path)
    assert fetched.returncode == 0
    assert "WARNING" in fetched.stderr and "latest" in fetched.stderr
    assert json.loads((tmp_path / "o" / "metadata.json").read_text())["version"] == 2


def test_failing_run_exits_non_zero_with_its_log_tail(tmp_path: Path, data_dir: Path) -> None:
    settings = make_settings(tmp_path / "aml", script="fail.py")
    env = script_env(settings)
    assert run_script("upload-data.py", "--data-dir", str(data_dir), env=env, cwd=tmp_path).returncode == 0
    run = run_script("run-training.py", env=env, cwd=tmp_path)
    assert run.returncode == 1
    assert "about to fail: the data is wrong" in run.stderr
    assert "exited with code 3" in run.stderr
    assert "Traceback" not in run.stderr


def test_run_training_names_the_run_at_submit_and_ctrl_c_leaves_it_to_attach(tmp_path: Path, data_dir: Path) -> None:
    import signal
    import subprocess
    import sys

    settings = make_settings(tmp_path / "aml", script="sleep_and_record.py", public_url="https://aml.example")
    env = script_env(settings, AZML_PUBLIC_URL="https://aml.example")
    assert run_script("upload-data.py", "--data-dir", str(data_dir), env=env, cwd=tmp_path).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "scripts" / "run-training.py"), "--arg", "seconds=4"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    submitted = ""
    while "### Submitted run" not in submitted:
        submitted = proc.stdout.readline()
        assert submitted or proc.poll() is None, proc.stderr.read()
    run_id = submitted.split()[3]
    assert f"(https://aml.example/ui/runs/{run_id})" in submitted
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert f"Run {run_id} goes on" in err and f"run-training.py --attach {run_id}" in err

    attached = run_script("run-training.py", "--attach", run_id, env=env, cwd=tmp_path)
    assert attached.returncode == 0, attached.stdout + attached.stderr
    assert f"### Run {run_id} ended Completed" in attached.stdout
    assert "### Registered model test-model version 1" in attached.stdout
    again = run_script("run-training.py", "--attach", run_id, env=env, cwd=tmp_path)
    assert f"### Run {run_id} was registered already: model test-model version 1" in again.stdout  # once
    assert "### Registered model" not in again.stdout and "AZML_MODEL_VER]1" in again.stdout
    unknown = run_script("run-training.py", "--attach", "no_such_run", env=env, cwd=tmp_path)
    assert unknown.returncode == 1 and unknown.stderr.startswith("ERROR! run 'no_such_run' not found")


def test_upload_data_shows_progress_in_a_log_and_none_when_quiet(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(20):
        (folder / f"part-{index:02}.csv").write_bytes(b"x" * (1000 + index))
    settings = make_settings(tmp_path / "aml")
    env = script_env(settings)
    shown = run_script("upload-data.py", "--data-dir", str(folder), env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if line.startswith("### uploaded")]
    assert [line.split("%")[0].split()[-1] for line in lines] == [str(n) for n in range(10, 101, 10)]
    assert "20 of 20 files" in lines[-1] and "/s" in lines[-1]
    quiet = run_script("upload-data.py", "--data-dir", str(folder), "--quiet", env=env, cwd=tmp_path)
    assert quiet.returncode == 0 and "### uploaded" not in quiet.stdout and "data version" in quiet.stdout

    one = tmp_path / "one"
    one.mkdir()
    (one / "large.bin").write_bytes(b"y" * (12 * 1024 * 1024))  # one file: progress moves by the bytes
    large = run_script("upload-data.py", "--data-dir", str(one), env=env, cwd=tmp_path)
    lines = [line for line in large.stdout.splitlines() if line.startswith("### uploaded")]
    assert len(lines) == 10 and "0 of 1 files, 6.0 MiB of 12.0 MiB" in lines[4], lines
    assert "1 of 1 files, 12.0 MiB of 12.0 MiB" in lines[-1]


def test_upload_progress_on_a_terminal_is_a_bar() -> None:
    import io

    from amllib.cli import UploadProgress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    progress = UploadProgress(files=2, total=2048, stream=screen)
    progress(1024, 1)
    progress(512)
    progress(512, 1)
    progress.close()
    assert "2.00k/2.00k" in screen.getvalue() and "2/2 files" in screen.getvalue()


def test_json_output_and_pipeline_variables_of_every_script(tmp_path: Path, data_dir: Path) -> None:
    settings = make_settings(tmp_path / "aml")
    github_output = tmp_path / "github_output"
    env = script_env(settings, GITHUB_OUTPUT=str(github_output))

    def as_json(*args: str) -> dict:
        done = run_script(*args, "--json", env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "##vso" not in done.stdout and len(done.stdout.splitlines()) == 1, done.stdout  # only the object
        return json.loads(done.stdout)

    uploaded = as_json("upload-data.py", "--data-dir", str(data_dir))
    assert uploaded["data_version"].startswith("sha256:") and uploaded["files"] >= 1
    ran = as_json("run-training.py")
    assert (
        ran["status"] == "Completed" and ran["model"]["version"] == 1 and ran["accuracy"] == ran["metrics"]["accuracy"]
    )
    promoted = as_json("promote-model.py", "--alias", "production", "--model-ver", "1")
    assert promoted == {"outcome": "moved", "model": "test-model", "alias": "production", "version": 1, "reason": None}
    fetched = as_json("fetch-model.py", "--alias", "production", "--output-path", str(tmp_path / "out"))
    assert (fetched["version"], fetched["alias"], fetched["accuracy"]) == (1, "production", ran["accuracy"])
    assert "metadata.json" in fetched["files"] and (tmp_path / "out" / "metadata.json").is_file()

    written = dict(line.split("=", 1) for line in github_output.read_text().splitlines())
    assert written["data_version"] == uploaded["data_version"] and written["run_id"] == ran["run_id"]
    assert float(written["accuracy"]) == ran["accuracy"] and written["model_version"] == "1"
    assert written["alias"] == "production" and written["promotion"] == "moved"

    text = run_script("run-training.py", env=env, cwd=tmp_path)  # without --json: the Azure DevOps commands
    run_id = text.stdout.split("### Submitted run ")[1].split()[0]
    for line in (f"AZML_RUN_ID]{run_id}", "AZML_ACCURACY]", "AZML_MODEL_VER]2"):
        assert f"##vso[task.setvariable variable={line}" in text.stdout, text.stdout


def test_errors_are_annotations_in_a_pipeline_and_an_object_with_json(tmp_path: Path) -> None:
    env = script_env(make_settings(tmp_path / "aml"))
    args = ("fetch-model.py", "--model-ver", "3", "--output-path", str(tmp_path / "o"))
    plain = run_script(*args, env=env, cwd=tmp_path)
    assert plain.returncode == 1 and "##vso" not in plain.stdout and "::error" not in plain.stdout
    azure = run_script(*args, env={**env, "TF_BUILD": "True"}, cwd=tmp_path)
    assert azure.stdout.startswith("##vso[task.logissue type=error]model 'test-model' not found")
    github = run_script(*args, env={**env, "GITHUB_ACTIONS": "true"}, cwd=tmp_path)
    assert github.stdout.startswith("::error::model 'test-model' not found")
    for extra in ({}, {"TF_BUILD": "True"}):
        failed = run_script(*args, "--json", env={**env, **extra}, cwd=tmp_path)
        assert failed.returncode == 1 and failed.stderr.startswith("ERROR! model 'test-model' not found")
        assert json.loads(failed.stdout)["error"] == "not_found"  # the one object, nothing else on stdout
    missing = run_script("upload-data.py", "--data-dir", str(tmp_path / "none"), "--json", env=env, cwd=tmp_path)
    assert missing.returncode == 1 and json.loads(missing.stdout)["error"] == "invalid"


def test_flags_override_the_environment_and_help_names_what_each_script_reads(tmp_path: Path, data_dir: Path) -> None:
    env = script_env(make_settings(tmp_path / "aml"))
    uploaded = run_script(
        "upload-data.py", "--data-dir", str(data_dir), "--datapath", "other-data", "--json", env=env, cwd=tmp_path
    )
    assert json.loads(uploaded.stdout)["path"] == "other-data"
    flags = ("--datapath", "other-data", "--experiment", "flagged", "--model", "flag-model", "--compute", "c2")
    ran = run_script(
        "run-training.py", *flags, "--script", "no_accuracy.py", "--json", "--quiet", env=env, cwd=tmp_path
    )
    body = json.loads(ran.stdout)
    assert (body["experiment"], body["model"]["name"], body["accuracy"]) == ("flagged", "flag-model", None), body
    unknown = run_script("run-training.py", "--script", "../escape.py", env=env, cwd=tmp_path)
    assert unknown.returncode == 1 and unknown.stderr.startswith("ERROR! ")

    helped = run_script("run-training.py", "--help", env=env, cwd=tmp_path)
    assert "    python scripts/run-training.py --attach RUN_ID" in helped.stdout  # the examples as written
    for name in ("AZML_SCRIPT", "AZML_EXPERIMENT", "AZML_COMPUTE_NAME", "AZML_BACKEND", "AZML_ENV_FILE"):
        assert name in helped.stdout
    version = run_script("fetch-model.py", "--version", env=env, cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("fetch-model.py ")


def test_run_training_streams_status_and_log_while_waiting(tmp_path: Path, data_dir: Path) -> None:
    env = script_env(make_settings(tmp_path / "aml", script="slow_accuracy.py"))
    assert run_script("upload-data.py", "--data-dir", str(data_dir), env=env, cwd=tmp_path).returncode == 0
    ran = run_script("run-training.py", "--arg", "seconds=2", env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    statuses = [line for line in lines if line.startswith("### [")]
    assert statuses[-1].endswith(" is Completed") and all("] run " in line for line in statuses)
    assert statuses == sorted(statuses)  # elapsed times only grow
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert epochs == [f"epoch {n} of 4" for n in range(1, 5)]  # every line once, in order
    assert lines.index(epochs[-1]) < lines.index(next(line for line in lines if line.startswith("### Run ")))
    quiet = run_script("run-training.py", "--arg", "seconds=1", "--quiet", env=env, cwd=tmp_path)
    assert quiet.returncode == 0 and "epoch 1" not in quiet.stdout and "### [" not in quiet.stdout


def test_scripts_read_the_env_file_of_the_current_folder_else_the_named_one(tmp_path: Path, data_dir: Path) -> None:
    env = script_env(make_settings(tmp_path / "aml"))
    del env["AZML_ENV_FILE"], env["AZML_DATAPATH"]
    here = tmp_path / "work"
    here.mkdir()
    (here / ".env").write_text("AZML_DATAPATH=from-dotenv\n")
    uploaded = run_script("upload-data.py", "--data-dir", str(data_dir), env=env, cwd=here)
    assert uploaded.returncode == 0, uploaded.stderr
    assert f"### Settings from the environment and {here / '.env'}" in uploaded.stdout
    assert "at datastore path" not in uploaded.stdout and "'from-dotenv'" in uploaded.stdout
    named = tmp_path / "ci.env"
    named.write_text("AZML_DATAPATH=from-named\n")
    other = run_script(
        "upload-data.py", "--data-dir", str(data_dir), env={**env, "AZML_ENV_FILE": str(named)}, cwd=here
    )
    assert "'from-named'" in other.stdout, other.stderr
    wrong = run_script(
        "upload-data.py", "--data-dir", str(data_dir), env={**env, "AZML_ENV_FILE": str(tmp_path / "no")}, cwd=here
    )
    assert wrong.returncode == 1 and "AZML_ENV_FILE names" in wrong.stderr
