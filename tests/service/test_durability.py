"""Idempotency, callbacks, and jobs that survive kill -9 of the service."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.service.conftest import Service, tar_bytes, upload, wait_for_status


def test_idempotency_key_replays_and_conflicts(service: Service) -> None:
    with service.client() as client:
        upload(client, {"a.csv": b"1"})
        body = {"script": "sleep_and_record.py", "args": {"seconds": 0.2}}

        def post(_: int) -> httpx.Response:
            with service.client() as own:
                return own.post("/runs", json=body, headers={"Idempotency-Key": "deploy-42"})

        with ThreadPoolExecutor(20) as pool:
            responses = list(pool.map(post, range(20)))
        assert {r.status_code for r in responses} == {202}
        assert len({r.json()["id"] for r in responses}) == 1
        assert sum(1 for r in responses if r.headers.get("idempotent-replayed")) == 19
        assert len(client.get("/runs").json()["items"]) == 1

        conflict = client.post("/runs", json={**body, "estimators": 3}, headers={"Idempotency-Key": "deploy-42"})
        assert conflict.status_code == 409 and "deploy-42" in conflict.json()["detail"]

        first = upload(client, {"b.csv": b"2"}, headers={"Idempotency-Key": "data-1"})
        again = upload(client, {"b.csv": b"2"}, headers={"Idempotency-Key": "data-1"})
        assert first.json()["id"] == again.json()["id"]
        assert upload(client, {"b.csv": b"3"}, headers={"Idempotency-Key": "data-1"}).status_code == 409


class Listener:
    """An HTTP server on 127.0.0.1 that records callbacks; fails the first `failures` of them."""

    def __init__(self, failures: int = 0) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.failures = failures
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if outer.failures > 0:
                    outer.failures -= 1
                    self.send_response(503)
                else:
                    outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while len(self.received) < count and time.time() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_callbacks_are_signed_retried_and_recorded(make_service) -> None:
    listener = Listener(failures=1)
    secret = "webhook-secret-for-tests"
    service = make_service(AZML_CALLBACK_HOSTS=f"127.0.0.1:{listener.port}", AZML_WEBHOOK_SECRET=secret)
    try:
        with service.client() as client:
            upload(client, {"a.csv": b"1"})
            url = f"http://127.0.0.1:{listener.port}/hook"
            job = client.post("/runs", json={"callback_url": url}).json()
            listener.wait(1)
            assert len(listener.received) == 1
            headers, body = listener.received[0]
            expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers["x-signature"], expected)
            sent = json.loads(body)
            assert sent["id"] == job["id"] and sent["status"] == "Completed"
            assert sent["model_version"]["version"] == 1
            deadline = time.time() + 10
            while not client.get(f"/runs/{job['id']}").json()["callback_status"] and time.time() < deadline:
                time.sleep(0.1)
            assert (
                client.get(f"/runs/{job['id']}").json()["callback_status"].startswith("delivered (HTTP 204, attempt 2")
            )
            other_port = client.post("/runs", json={"callback_url": f"http://127.0.0.1:{listener.port + 1}/"})
            assert other_port.status_code == 422
            data = client.post(
                "/data",
                params={"path": "cb", "callback_url": url},
                content=tar_bytes({"a": b"1"}),
                headers={"content-type": "application/x-tar"},
            ).json()
            listener.wait(2)
            assert json.loads(listener.received[1][1])["id"] == data["id"]
            refused = client.post(
                "/data",
                params={"callback_url": "http://10.0.0.1/"},
                content=b"x",
                headers={"content-type": "application/x-tar"},
            )
            assert refused.status_code == 422 and "callback_url" in refused.json()["detail"]
    finally:
        listener.close()
    assert secret not in service.log.read_text()


def test_kill_9_during_a_run_then_restart_completes_it_once(make_service, tmp_path: Path) -> None:
    service = make_service()
    with service.client() as client:
        upload(client, {"a.csv": b"1"})
        job = client.post("/runs", json={"script": "sleep_and_record.py", "args": {"seconds": 4}}).json()
        wait_for_status(client, job["id"], "Running")
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
        upload(client, {"a.csv": b"1"})
        job = client.post("/runs", json={"script": "sleep_and_record.py", "args": {"seconds": 60}}).json()
        wait_for_status(client, job["id"], "Running")
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


def test_no_tokens_means_loopback_only(tmp_path: Path) -> None:
    import asyncio

    from amllib.settings import Settings
    from service.http.auth import BearerAuth
    from service.http.session import SessionSigner

    sent: list[dict] = []

    async def app(scope: dict, receive: object, send: object) -> None:
        sent.append({"status": 200})

    async def send(message: dict) -> None:
        sent.append(message)

    auth = BearerAuth(app, Settings(_env_file=None), SessionSigner(tmp_path, full={}, read={}))
    for host, status in (("127.0.0.1", 200), ("::1", 200), ("10.1.2.3", 403), ("203.0.113.9", 403)):
        sent.clear()
        scope = {"type": "http", "path": "/runs", "method": "GET", "headers": [], "client": (host, 5000)}
        asyncio.run(auth(scope, None, send))
        assert sent[0]["status"] == status, host


def test_the_job_store_writes_with_full_sync_by_default(tmp_path: Path) -> None:
    """A job answered 202 is on disk even if the machine loses power right after (not only a process kill)."""
    import asyncio

    from service.core.store import JobStore

    for setting, expected in ((None, 2), ("NORMAL", 1)):
        store = JobStore(tmp_path / f"{setting}.sqlite", **({"synchronous": setting} if setting else {}))
        mode = asyncio.run(store.write(lambda db: db.execute("PRAGMA synchronous").fetchone()[0]))
        store.close()
        assert mode == expected, setting  # 2 = FULL, 1 = NORMAL
