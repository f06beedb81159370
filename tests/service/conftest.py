"""A real service: uvicorn on 127.0.0.1, a free port, a temp AZML_HOME, driven with httpx."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from amllib.settings import REPO_ROOT
from tests.conftest import TEST_TRAINING, free_port

FULL_TOKEN = "full-token-for-tests"
READ_TOKEN = "read-token-for-tests"


class Service:
    """One uvicorn process that can be killed with -9 and started again on the same state."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.log = tmp / "service.log"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "uvicorn", "service.app:app", "--host", "127.0.0.1"),
                    *("--port", str(self.port), "--no-proxy-headers", "--timeout-graceful-shutdown", "3"),
                ],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("service exited:\n" + self.log.read_text())
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()  # never leave a half-started service behind a failed test
        raise RuntimeError("service did not start:\n" + self.log.read_text())

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def client(self, token: str | None = FULL_TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)


def service_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZML_")}
    env.update(
        {
            "AZML_ENV_FILE": "none",  # never a developer's .env in the project's folder
            "AZML_HOME": str(tmp / "aml"),
            "AZML_TRAINING_DIR": str(TEST_TRAINING),
            "AZML_OUTPUT_ROOT": str(tmp / "outputs"),
            "AZML_DATA_ROOT": str(tmp / "server-data"),
            "AZML_API_TOKENS": FULL_TOKEN,
            "AZML_API_READ_TOKENS": READ_TOKEN,
            "AZML_DATAPATH": "test-data",
            "AZML_EXPERIMENT": "svc",
            "AZML_MODEL": "svc-model",
            "AZML_SCRIPT": "aml_v1_logging.py",
            "AZML_COMPUTE_NAME": "local-cluster",
            "AZML_POLL_SECONDS": "0.2",
        }
    )
    env.update(extra)
    return env


@pytest.fixture
def make_service(tmp_path: Path) -> Iterator:
    started: list[Service] = []

    def make(**extra: str) -> Service:
        service = Service(tmp_path, service_env(tmp_path, **extra))
        service.start()
        started.append(service)
        return service

    yield make
    for service in started:
        service.stop()
        stop_endpoints(Path(service.env["AZML_HOME"]))


def stop_endpoints(home: Path) -> None:
    """Kill the endpoint processes a test started (they outlive the service by design)."""
    for pid_file in (home / "endpoints").glob("*/server.pid"):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.fixture
def service(make_service) -> Service:
    return make_service()


def wait_for_status(client: httpx.Client, job_id: str, status: str, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while client.get(f"/runs/{job_id}").json()["status"] != status and time.time() < deadline:
        time.sleep(0.1)


def tar_bytes(files: dict[str, bytes], *, gz: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def upload(
    client: httpx.Client, files: dict[str, bytes], path: str = "test-data", headers: dict[str, str] | None = None
) -> httpx.Response:
    return client.post(
        "/data",
        params={"path": path, "wait": 30},
        content=tar_bytes(files),
        headers={"content-type": "application/x-tar", **(headers or {})},
    )


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator:
    """The service in this process (Starlette's TestClient runs its lifespan), for what needs no real process.

    Requests come from 127.0.0.1 unless `client_host` says otherwise; tokens as in service_env.
    """
    from fastapi.testclient import TestClient

    from amllib.settings import Settings
    from service.app import create_app

    clients: list = []

    def make(*, client_host: str = "127.0.0.1", token: str | None = FULL_TOKEN, **overrides: object) -> TestClient:
        values: dict[str, object] = {
            "home": tmp_path / "aml",
            "training_dir": TEST_TRAINING,
            "output_root": tmp_path / "outputs",
            "data_root": tmp_path / "server-data",
            "api_tokens": FULL_TOKEN,
            "api_read_tokens": READ_TOKEN,
            "datapath": "test-data",
            "experiment": "svc",
            "model": "svc-model",
            "script": "aml_v1_logging.py",
            "compute_name": "local-cluster",
            "poll_seconds": 0.2,
            "run_import_seconds": 0,
        }
        values.update(overrides)
        settings = Settings(_env_file=None, **values)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = TestClient(
            create_app(settings), base_url="http://127.0.0.1:8000", client=(client_host, 50000), headers=headers
        )
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
    stop_endpoints(tmp_path / "aml")


LONG_NAME = "n" * 300  # over the 255 bytes a file name may have


def assert_refused(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, (response.request.url, response.status_code, response.text[:300])
    body = response.json()
    assert words in body["detail"] or words in str(body.get("fields")), body
    assert len(response.content) < 2000, "an error echoes at most a short excerpt"


class Listener:
    """An HTTP server on 127.0.0.1 that records callbacks; fails the first `failures` of them."""

    def __init__(self, failures: int = 0) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.failures = failures
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-body (a replica killed while sending): not received
                    self.close_connection = True
                    return
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
