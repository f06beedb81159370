"""AZML_RETENTION_DAYS: ended jobs and their run folders go after that long; unfinished work, models and
current data stay; a sweep stopped half-way is finished at the next start and nothing comes back."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from tests.service.conftest import Service, upload
from tests.service.observe.test_metrics import samples, value

SECONDS = 2.0  # retention, as a fraction of a day below
RETENTION = {
    "AZML_RETENTION_DAYS": f"{SECONDS / 86400:.8f}",
    "AZML_RETENTION_SWEEP_SECONDS": "0.3",
    "AZML_RUN_IMPORT_SECONDS": "0.3",
}


def wait_until(predicate, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def run_folders(service: Service) -> set[str]:
    return {p.name for p in (Path(service.env["AZML_HOME"]) / "runs").iterdir()}


def sweep_by_hand(home: Path, job: dict, *, discarded: bool) -> None:
    """What the sweep's transaction does (the job's row gone, its run recorded), with the folder left."""
    with sqlite3.connect(home / "jobs.sqlite") as db:
        db.execute("DELETE FROM jobs WHERE id = ?", (job["id"],))
        db.execute("INSERT INTO swept_runs VALUES (?, ?, ?)", (job["backend_run_id"], time.time(), int(discarded)))


def test_sweep_removes_ended_jobs_and_run_folders_but_keeps_unfinished_work_models_and_data(make_service) -> None:
    service = make_service(**RETENTION)
    with service.client() as client:
        upload(client, {"train.csv": b"a,b\n1,2\n"})
        done = client.post("/runs", params={"wait": 60}, json={}).json()
        assert done["status"] == "Completed" and done["model_version"], done
        run_id = done["backend_run_id"]
        slow = client.post("/runs", json={"script": "slow_accuracy.py", "args": {"seconds": "6"}}).json()
        assert run_id in run_folders(service)

        wait_until(lambda: client.get(f"/runs/{done['id']}").status_code == 404)
        assert run_id not in run_folders(service)
        assert not [name for name in run_folders(service) if name.startswith(".trash-")]
        # the unfinished run, its folder and its data stay while it runs, long past the retention time
        live = client.get(f"/runs/{slow['id']}").json()
        assert live["status"] in ("Queued", "Preparing", "Running"), live
        wait_until(lambda: client.get(f"/runs/{slow['id']}").json()["status"] == "Running")
        assert client.get(f"/runs/{slow['id']}").json()["backend_run_id"] in run_folders(service)
        # the model made by the removed run is still served, and so is the data now at its path
        fetched = client.post("/models/fetch", params={"wait": 30}, json={"output_path": "after-sweep"}).json()
        assert fetched["status"] == "Completed", fetched
        assert client.get("/datastore").json()["paths"][0]["path"] == "test-data"
        again = client.post("/runs", params={"wait": 60}, json={}).json()
        assert again["status"] == "Completed", again

        time.sleep(1.5)  # several import passes: a swept run is never brought back
        assert client.get(f"/runs/{done['id']}").status_code == 404
        assert client.get(f"/runs/{run_id}").status_code == 404
        listed = {item["id"] for item in client.get("/runs", params={"limit": 200}).json()["items"]}
        assert done["id"] not in listed and slow["id"] in listed

        found = samples(client.get("/metrics").text)
        assert value(found, "aml_retention_removed_total", what="job") >= 2  # the run and the upload
        assert value(found, "aml_retention_removed_total", what="run_folder") >= 1
        assert value(found, "aml_retention_removed_total", what="data_version") == 0  # local: the collector's
    service.stop()
    assert "retention sweep (older than" in service.log.read_text()


def test_a_sweep_killed_between_rows_and_folders_is_finished_at_the_next_start(make_service) -> None:
    service = make_service(AZML_RUN_IMPORT_SECONDS="0.3")
    with service.client() as client:
        upload(client, {"train.csv": b"a,b\n1,2\n"})
        done = client.post("/runs", params={"wait": 60}, json={}).json()
    service.kill9()
    home = Path(service.env["AZML_HOME"])
    run_id = done["backend_run_id"]
    # the state a kill leaves after the sweep's transaction and before the folder went: row gone, run recorded
    sweep_by_hand(home, done, discarded=False)
    # and a folder the kill left half-deleted in the trash
    (home / "runs" / ".trash-old_1_abc" / "outputs").mkdir(parents=True)

    # a retention long enough that the importer's window still covers the run: only swept_runs keeps it out
    service.env.update({**RETENTION, "AZML_RETENTION_DAYS": f"{120 / 86400:.8f}"})
    service.start()
    with service.client() as client:
        wait_until(lambda: run_id not in run_folders(service))
        assert ".trash-old_1_abc" not in run_folders(service)
        time.sleep(1.0)  # import passes ran meanwhile: the swept run is not imported back
        assert client.get(f"/runs/{run_id}").status_code == 404
        assert client.get("/runs").json()["items"] == []
    with sqlite3.connect(home / "jobs.sqlite") as db:
        assert db.execute("SELECT discarded FROM swept_runs WHERE run_id = ?", (run_id,)).fetchone() == (1,)


def test_no_retention_keeps_everything(make_service) -> None:
    service = make_service(AZML_RETENTION_SWEEP_SECONDS="0.3")
    with service.client() as client:
        upload(client, {"train.csv": b"a,b\n1,2\n"})
        done = client.post("/runs", params={"wait": 60}, json={}).json()
        time.sleep(SECONDS + 1)
        assert client.get(f"/runs/{done['id']}").status_code == 200
    assert done["backend_run_id"] in run_folders(service)
    assert json.loads((Path(service.env["AZML_HOME"]) / "runs" / done["backend_run_id"] / "run.json").read_text())


def test_a_swept_run_the_backend_still_lists_is_never_imported_back(make_service) -> None:
    """Azure keeps its runs after the sweep removed their jobs; the importer must not bring them back."""
    service = make_service(AZML_RUN_IMPORT_SECONDS="0.3")
    with service.client() as client:
        upload(client, {"train.csv": b"a,b\n1,2\n"})
        done = client.post("/runs", params={"wait": 60}, json={}).json()
    service.kill9()
    sweep_by_hand(Path(service.env["AZML_HOME"]), done, discarded=True)
    service.env.update({**RETENTION, "AZML_RETENTION_DAYS": f"{600 / 86400:.8f}"})
    service.start()
    with service.client() as client:
        time.sleep(1.5)
        assert client.get(f"/runs/{done['backend_run_id']}").status_code == 404
    assert done["backend_run_id"] in run_folders(service)  # the sweep only marks; it is not old enough
