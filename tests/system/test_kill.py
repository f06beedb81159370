"""kill -9 of the service at the worst moments: every accepted job goes on or ends with a reason, none twice."""

from __future__ import annotations

from pathlib import Path

import httpx

from amllib.backends.local import LocalBackend
from amllib.settings import Settings
from tests.conftest import TEST_TRAINING
from tests.service.conftest import upload, wait_for_status


def running(client: httpx.Client, seconds: int) -> dict:
    """Data uploaded and a run of `seconds` under way."""
    upload(client, {"a.csv": b"1"})
    job = client.post("/runs", json={"script": "sleep_and_record.py", "args": {"seconds": seconds}}).json()
    wait_for_status(client, job["id"], "Running")
    return job


def test_kill_9_during_a_run_then_restart_completes_it_once(make_service, tmp_path: Path) -> None:
    service = make_service()
    with service.client() as client:
        job = running(client, 4)
        queued = client.post("/models/fetch", json={"output_path": "after"}).json()  # fails: no model yet
    service.kill9()
    service.start()
    with service.client() as client:
        done = client.get(f"/runs/{job['id']}", params={"wait": 60}).json()
        assert done["status"] == "Completed", done
        assert done["model_version"] == {"name": "svc-model", "version": 1}
        assert client.get(f"/models/fetch/{queued['id']}", params={"wait": 30}).json()["job"]["status"] == "Failed"
        assert len(client.get("/runs").json()["items"]) == 1
        assert [v["version"] for v in client.get("/models/svc-model/versions").json()["versions"]] == [1]
    runs = [p for p in (tmp_path / "aml" / "runs").iterdir() if not p.name.startswith(".")]
    assert len(runs) == 1  # re-attached, not submitted twice


def test_kill_9_right_after_accepting_resumes_the_job(make_service) -> None:
    service = make_service()
    with service.client() as client:
        upload(client, {"a.csv": b"1"})
        ids = [client.post("/runs", json={"args": {"flavour": str(i)}}).json()["id"] for i in range(3)]
    service.kill9()
    service.start()
    with service.client() as client:
        jobs = [client.get(f"/runs/{i}", params={"wait": 60}).json() for i in ids]
        assert [job["status"] for job in jobs] == ["Completed"] * 3, jobs
        assert sorted(v["version"] for v in client.get("/models/svc-model/versions").json()["versions"]) == [1, 2, 3]


def test_a_run_whose_process_died_with_the_machine_ends_failed(make_service, tmp_path: Path) -> None:
    service = make_service()
    with service.client() as client:
        job = running(client, 60)
    service.kill9()
    run_dir = next(p for p in (tmp_path / "aml" / "runs").iterdir() if not p.name.startswith("."))
    import os
    import signal

    os.killpg(int((run_dir / "runner.pid").read_text()), signal.SIGKILL)  # as a reboot would
    service.start()
    with service.client() as client:
        ended = client.get(f"/runs/{job['id']}", params={"wait": 30})
        assert ended.status_code == 502
        assert "ended without recording a result" in ended.json()["detail"]


def test_kill_9_after_registering_does_not_register_the_run_twice(make_service, tmp_path: Path) -> None:
    """The state a kill between register and Completed leaves: the version exists, the job is not done."""
    service = make_service()
    settings = Settings(_env_file=None, home=Path(service.env["AZML_HOME"]), training_dir=TEST_TRAINING)
    with service.client() as client:
        upload(client, {"a.csv": b"1,2\n"})
    for round_number in range(1, 4):
        with service.client() as client:
            job = client.post("/runs", json={"script": "sleep_and_record.py", "args": {"seconds": 1.5}}).json()
            wait_for_status(client, job["id"], "Running")
            run_id = client.get(f"/runs/{job['id']}").json()["backend_run_id"]
        service.kill9()
        backend = LocalBackend(settings)
        backend.wait_for_run(run_id, timeout=30, poll=0.1)
        made = backend.register_model(run_id=run_id, model_name="svc-model", tags={})  # as the killed service did
        service.start()
        with service.client() as client:
            done = client.get(f"/runs/{job['id']}", params={"wait": 30}).json()
        assert done["status"] == "Completed"
        assert (
            done["model_version"]
            == {"name": "svc-model", "version": made.version}
            == {
                "name": "svc-model",
                "version": round_number,
            }
        )
        assert [v.version for v in backend.list_model_versions("svc-model")] == list(range(1, round_number + 1))
