"""Runs started elsewhere (the scripts) appear in GET /runs once, watched live, linked by their run id."""

from __future__ import annotations

import subprocess
import sys
import time

from amllib.settings import REPO_ROOT
from tests.conftest import run_script
from tests.service.conftest import Service, upload


def test_a_run_started_with_the_scripts_appears_once_with_its_model_version(make_service, tmp_path) -> None:
    service: Service = make_service(AZML_RUN_IMPORT_SECONDS="0.3")
    with service.client() as client:
        upload(client, {"a.csv": b"1,2\n"})
        ours = client.post("/runs", params={"wait": 60}, json={"estimators": 2}).json()
        env = {**service.env, "AZML_MODEL": "script-model"}
        done = run_script("run-training.py", "--estimators", "3", env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        deadline = time.time() + 20
        while time.time() < deadline:
            items = client.get("/runs").json()["items"]
            theirs = [i for i in items if i["imported"]]
            if theirs and theirs[0]["status"] == "Completed" and theirs[0]["model_version"]:
                break
            time.sleep(0.2)
        assert len(items) == 2, items  # ours once (never imported again) and the script's
        assert [i["id"] for i in items if not i["imported"]] == [ours["id"]]
        run = theirs[0]
        assert run["created_by"].startswith("run-training.py (")
        assert run["params"] == {"estimators": 3, "args": {}}
        assert run["metrics"]["accuracy"] == 0.93 and run["data_version"].startswith("sha256:")
        assert run["model_version"] == {"name": "script-model", "version": 1}
        by_run_id = client.get(f"/runs/{run['backend_run_id']}").json()
        assert by_run_id["id"] == run["id"]
        assert client.get(f"/runs/{ours['backend_run_id']}").json()["id"] == ours["id"]
        assert ours["data_version"] == run["data_version"]


def test_a_script_run_is_watched_live_once_imported(make_service, tmp_path) -> None:
    service: Service = make_service(AZML_RUN_IMPORT_SECONDS="0.3")
    with service.client() as client:
        upload(client, {"a.csv": b"1,2\n"})
        env = {**service.env, "AZML_SCRIPT": "sleep_and_record.py"}
        script = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "scripts" / "run-training.py"), "--arg", "seconds=3"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
        )
        seen = set()
        deadline = time.time() + 30
        while time.time() < deadline and "Completed" not in seen:
            seen |= {i["status"] for i in client.get("/runs").json()["items"]}
            time.sleep(0.1)
        assert script.wait(30) == 0
        assert "Running" in seen and "Completed" in seen
        events = client.get("/runs").json()["items"]
        assert len(events) == 1 and events[0]["imported"]
