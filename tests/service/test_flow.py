"""The flows a pipeline, a dashboard and a chat bot drive, end to end on the local backend."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from amllib.settings import REPO_ROOT
from tests.conftest import TITANIC
from tests.service.conftest import Service, tar_bytes, upload


def test_titanic_upload_train_fetch(make_service, tmp_path: Path) -> None:
    service: Service = make_service(
        AZML_TRAINING_DIR=str(REPO_ROOT / "training"),
        AZML_SCRIPT="scikit-titanic.py",
        AZML_DATAPATH="titanic-data",
        AZML_MODEL="titanic-model",
    )
    with service.client() as client:
        archive = tar_bytes({"titanic.csv": (TITANIC / "titanic.csv").read_bytes()}, gz=True)
        response = client.post(
            "/data", params={"wait": 30}, content=archive, headers={"content-type": "application/gzip"}
        )
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["status"] == "Completed" and data["path"] == "titanic-data" and data["files"] == 1
        assert data["digest"].startswith("sha256:")
        assert client.get(f"/data/{data['id']}").json()["digest"] == data["digest"]

        submitted = client.post("/runs", json={"estimators": 5})
        assert submitted.status_code == 202
        assert submitted.headers["location"] == f"/runs/{submitted.json()['id']}"
        first = client.get(submitted.headers["location"], params={"wait": 120}).json()
        assert first["status"] == "Completed", first
        assert 0.5 < first["metrics"]["accuracy"] <= 1
        assert first["model_version"] == {"name": "titanic-model", "version": 1}
        assert first["params"] == {"estimators": 5, "args": {}}
        assert first["backend"] == "local" and first["backend_run_id"]

        second = client.post("/runs", params={"wait": 120}, json={"estimators": 80}).json()
        assert second["model_version"]["version"] == 2
        best = 1 if first["metrics"]["accuracy"] >= second["metrics"]["accuracy"] else 2

        latest = client.post("/models/fetch", params={"wait": 30}, json={"output_path": "latest"}).json()
        assert latest["status"] == "Completed" and latest["version"] == 2
        one = client.post("/models/fetch", params={"wait": 30}, json={"version": 1, "output_path": "one"}).json()
        chosen = client.post("/models/fetch", params={"wait": 30}, json={"use_best": True, "output_path": "b"}).json()
        assert one["version"] == 1 and chosen["version"] == best
        folder = tmp_path / "outputs" / "b"
        assert sorted(p.name for p in folder.iterdir()) == ["flags.pkl", "lookup.pkl", "metadata.json", "model.pkl"]
        metadata = json.loads((folder / "metadata.json").read_text())
        assert metadata["version"] == best and metadata["name"] == "titanic-model"
        assert metadata["tags"]["accuracy"] == max(first["metrics"]["accuracy"], second["metrics"]["accuracy"])
        assert metadata == chosen["metadata"]

        assert client.get("/models").json() == {"models": ["titanic-model"]}
        versions = client.get("/models/titanic-model/versions").json()["versions"]
        assert [v["version"] for v in versions] == [1, 2] and "accuracy" in versions[0]["tags"]
        archive = client.get("/models/titanic-model/versions/1/archive")
        assert archive.status_code == 200
        with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
            assert sorted(tar.getnames()) == ["flags.pkl", "lookup.pkl", "metadata.json", "model.pkl"]
            assert json.load(tar.extractfile("metadata.json"))["version"] == 1


def test_metrics_logs_listing_and_cancel(service: Service) -> None:
    with service.client() as client:
        assert upload(client, {"a.csv": b"1,2\n"}).status_code == 200
        done = client.post("/runs", params={"wait": 60}, json={"args": {"flavour": "mint"}}).json()
        assert done["status"] == "Completed"
        history = client.get(f"/runs/{done['id']}/metrics").json()["metrics"]
        assert history["accuracy"] == [0.5, 0.93] and history["losses"] == [[0.9, 0.5, 0.25]]
        assert done["metrics"]["accuracy"] == 0.93
        log = client.get(f"/runs/{done['id']}/logs")
        assert "data files: ['a.csv']" in log.text
        assert len(client.get(f"/runs/{done['id']}/logs", params={"tail": 2}).text.splitlines()) == 2

        sleeper = client.post("/runs", json={"script": "sleep_and_record.py", "args": {"seconds": 60}}).json()
        assert client.get(f"/runs/{sleeper['id']}", params={"wait": 1.5}).json()["status"] in ("Queued", "Running")
        assert client.get(f"/runs/{sleeper['id']}").json()["cancel_requested"] is False
        asked = client.post(f"/runs/{sleeper['id']}/cancel")
        assert asked.status_code == 202 and asked.json()["cancel_requested"] is True  # the state after the request
        ended = client.get(f"/runs/{sleeper['id']}", params={"wait": 30})
        assert ended.status_code == 409 and ended.json()["job"]["status"] == "Canceled"
        assert client.post(f"/runs/{sleeper['id']}/cancel").status_code == 409

        other = client.post("/runs", params={"wait": 60}, json={"experiment": "other"}).json()
        page = client.get("/runs", params={"limit": 2}).json()
        assert [r["id"] for r in page["items"]] == [other["id"], sleeper["id"]]
        rest = client.get("/runs", params={"limit": 2, "cursor": page["next_cursor"]}).json()
        assert [r["id"] for r in rest["items"]] == [done["id"]] and rest["next_cursor"] is None
        assert [r["id"] for r in client.get("/runs", params={"experiment": "other"}).json()["items"]] == [other["id"]]
        assert [r["id"] for r in client.get("/runs", params={"status": "Canceled"}).json()["items"]] == [sleeper["id"]]
        assert client.get("/runs", params={"status": "Sleeping"}).status_code == 422


def test_failing_script_fails_with_log_tail_and_an_error_status(service: Service) -> None:
    with service.client() as client:
        upload(client, {"a.csv": b"x"})
        response = client.post("/runs", params={"wait": 60}, json={"script": "fail.py"})
        assert response.status_code == 502
        body = response.json()
        assert body["error"] == "run_failed" and body["job"]["status"] == "Failed"
        assert "exited with code 3" in body["detail"] and "about to fail: the data is wrong" in body["detail"]
        assert body["job"]["model_version"] is None
        assert client.get("/models").json() == {"models": []}


def test_multipart_and_server_folder_uploads(service: Service, tmp_path: Path) -> None:
    with service.client() as client:
        files = [("files", ("a.csv", b"1,2\n")), ("files", ("sub/b.csv", b"3,4\n"))]
        response = client.post("/data", params={"path": "multi", "wait": 30}, files=files)
        assert response.status_code == 200, response.text
        assert response.json()["files"] == 2 and response.json()["source"] == "multipart"

        folder = tmp_path / "server-data" / "nightly"
        folder.mkdir(parents=True)
        (folder / "x.csv").write_text("x")
        response = client.post("/data", params={"path": "nightly", "wait": 30}, json={"data_dir": "nightly"})
        assert response.status_code == 200 and response.json()["files"] == 1
        escape = client.post("/data", json={"data_dir": "../../etc"})
        assert escape.status_code == 400 and "data_dir" in escape.json()["detail"]
        assert client.post("/data", json={"data_dir": "missing"}).status_code == 422
        assert client.post("/data", json={"folder": "x"}).status_code == 422


def test_scripts_datastore_and_the_runs_of_a_data_version(service: Service) -> None:
    with service.client() as client:
        scripts = client.get("/scripts").json()["scripts"]
        names = [s["name"] for s in scripts]
        assert "aml_v1_logging.py" in names and "sleep_and_record.py" in names
        assert all(s["digest"].startswith("sha256:") for s in scripts)
        assert client.get("/datastore").json() == {"paths": []}
        data = upload(client, {"a.csv": b"1,2\n"}).json()
        upload(client, {"b.csv": b"3"}, path="team/other")
        paths = client.get("/datastore").json()["paths"]
        assert [(p["path"], p["digest"]) for p in paths][1] == ("test-data", data["digest"])
        assert [p["path"] for p in paths] == ["team/other", "test-data"]
        run = client.post("/runs", params={"wait": 60}, json={"estimators": 1}).json()
        digest = next(s["digest"] for s in scripts if s["name"] == "aml_v1_logging.py")
        assert (run["data_version"], run["script_digest"]) == (data["digest"], digest)
        used = client.get("/runs", params={"data_version": data["digest"]}).json()["items"]
        assert [r["id"] for r in used] == [run["id"]]
        assert client.get("/runs", params={"data_version": "sha256:nothing"}).json()["items"] == []


def test_a_run_is_found_by_any_id_it_goes_by(service: Service) -> None:
    """The id the scripts print (the backend's run id) or a prefix of either id finds the run; ids= reads several."""
    with service.client() as client:
        upload(client, {"a.csv": b"1,2\n"})
        first = client.post("/runs", params={"wait": 60}, json={"experiment": "alpha"}).json()
        second = client.post("/runs", params={"wait": 60}, json={"experiment": "beta"}).json()
        backend_id = first["backend_run_id"]
        for q in (backend_id, backend_id[:12], first["id"], first["id"][:10], "alpha"):
            found = client.get("/runs", params={"q": q}).json()["items"]
            assert [job["id"] for job in found] == [first["id"]], q
        assert client.get("/runs", params={"q": "no-such-run"}).json()["items"] == []
        both = client.get("/runs", params={"ids": f"{backend_id},{second['id']}"}).json()["items"]
        assert {job["id"] for job in both} == {first["id"], second["id"]}
        assert client.get("/runs", params={"ids": ",".join(["x"] * 51)}).status_code == 422
