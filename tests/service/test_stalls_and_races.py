"""Issue 7, items 1-4: stalled bodies, kill -9 between register and Completed, upload/run races, args."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx

from amllib.backends.local import LocalBackend
from amllib.settings import Settings
from tests.conftest import TEST_TRAINING
from tests.service.conftest import FULL_TOKEN, Service, tar_bytes, upload, wait_for_status


def stalled_upload(service: Service, path: str = "stalled") -> socket.socket:
    """A POST /data that promises a large tar, sends a few bytes of it, and holds the socket."""
    sock = socket.create_connection(("127.0.0.1", service.port))
    head = (
        f"POST /data?path={path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {FULL_TOKEN}\r\n"
        "Content-Type: application/x-tar\r\nContent-Length: 1000000000\r\n\r\n"
    )
    sock.sendall(head.encode() + tar_bytes({"a.csv": b"x" * 4096})[:700])
    return sock


def read_answer(sock: socket.socket, timeout: float = 15) -> str:
    """Everything the server sends before it closes the connection (or the time is up)."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return received.decode(errors="replace")


def staging_folders(service: Service) -> list[Path]:
    return list((Path(service.env["AZML_HOME"]) / "datastore" / ".versions").glob("*.partial"))


def test_stalled_uploads_cost_only_themselves_and_are_cut_off(make_service) -> None:
    # 1 job slot → a backend pool of 6 threads; 16 stalled bodies used to take every one of them.
    service = make_service(AZML_JOB_CONCURRENCY="1", AZML_BODY_TIMEOUT="4")
    with service.client() as client:
        upload(client, {"a.csv": b"1,2\n"})
        sockets = [stalled_upload(service) for _ in range(16)]
        try:
            time.sleep(0.5)
            started = time.monotonic()
            assert client.get("/models", timeout=5).status_code == 200
            files = {"files": ("m.csv", b"1,2\n", "text/csv")}
            assert client.post("/data", params={"path": "multi", "wait": 10}, files=files).status_code == 200
            run = client.post("/runs", params={"wait": 30}, json={"estimators": 2})
            assert run.status_code == 200 and run.json()["status"] == "Completed"
            assert time.monotonic() - started < 20
            for sock in sockets:
                answer = read_answer(sock)
                assert answer.startswith("HTTP/1.1 408") and "AZML_BODY_TIMEOUT" in answer
        finally:
            for sock in sockets:
                sock.close()
        deadline = time.time() + 5
        while staging_folders(service) and time.time() < deadline:
            time.sleep(0.1)
        assert staging_folders(service) == []
    assert "Traceback" not in service.log.read_text()


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


def test_uploads_racing_runs_on_one_path_never_take_a_runs_data(service: Service) -> None:
    with service.client() as client:
        upload(client, {"a.csv": b"1,2\n"})
        jobs: list[str] = []

        def keep_uploading() -> None:
            with service.client() as own:
                for index in range(12):
                    assert upload(own, {f"f{index}.csv": b"3,4\n" * 100}).status_code == 200

        uploader = threading.Thread(target=keep_uploading)
        uploader.start()
        for _ in range(12):
            jobs.append(client.post("/runs", json={"estimators": 1}).json()["id"])
        uploader.join()
        ends = [client.get(f"/runs/{job_id}", params={"wait": 120}).json() for job_id in jobs]
        assert [e["status"] for e in ends] == ["Completed"] * len(jobs), [e["error"] for e in ends]
        # Every replaced version was freed once its runs ended: only the current one is left.
        versions = Path(service.env["AZML_HOME"]) / "datastore" / ".versions"
        assert len([p for p in versions.iterdir() if len(p.name) == 32 and p.is_dir()]) == 1


def test_args_cannot_point_a_run_at_another_folder(service: Service) -> None:
    with service.client() as client:
        upload(client, {"a.csv": b"1,2\n"})
        for args in ({"data-path": "/etc"}, {"data_path": "/etc"}, {"data": "/etc"}, {"est": 5}):
            refused = client.post("/runs", json={"args": args})
            assert refused.status_code == 422, args
            assert "service sets itself" in refused.json()["detail"]
        job = client.post("/runs", params={"wait": 60}, json={"args": {"flavour": "--data-path=/etc"}}).json()
        assert job["status"] == "Completed"
        log = httpx.get(f"{service.url}/runs/{job['id']}/logs", headers={"Authorization": f"Bearer {FULL_TOKEN}"})
        assert "data files: ['a.csv']" in log.text
