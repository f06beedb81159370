"""A local endpoint as users lean on it (issue 29): deploy v1, a 10 % canary of v2, promote it, roll back, all
while a client keeps scoring: no request fails and every answer comes from a version live at that moment.
Then the endpoint outlives a restart of the service, and a `kill -9` of its process is noticed and undone."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx

from tests.service.conftest import Service, upload

PASSENGER = {"Pclass": 1, "Age": 30, "Gender": "female"}


def wait_until(predicate, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


class Scorer(threading.Thread):
    """Sends requests one after another and records (when sent, when answered, status, version)."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(daemon=True)
        self.url, self.key = url, key
        self.answers: list[tuple[float, float, int, str | None]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {self.key}"}, timeout=10) as client:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    answer = client.post(f"{self.url}/api/predict", json=PASSENGER)
                    status, version = answer.status_code, answer.headers.get("x-model-version")
                except httpx.HTTPError as exc:
                    status, version = 0, type(exc).__name__
                self.answers.append((sent, time.monotonic(), status, version))


def deployed(client: httpx.Client, **body: object) -> tuple[dict, float, float]:
    """Deploy and wait; (the job, when asked, when done)."""
    asked = time.monotonic()
    job = client.post("/deployments", params={"wait": 120}, json={"endpoint": "titanic", **body}).json()
    assert job["status"] == "Completed", job
    return job, asked, time.monotonic()


def test_switches_under_load_lose_no_request_and_the_endpoint_outlives_restarts_and_kill_9(
    make_service, tmp_path: Path
) -> None:
    service: Service = make_service(AZML_SCRIPT="contract_model.py", AZML_MODEL="titanic-model")
    with service.client() as client:
        upload(client, {"a.csv": b"1"})
        for survival in ("0.9", "0.1"):
            run = client.post("/runs", params={"wait": 120}, json={"args": {"survival": survival}}).json()
            assert run["status"] == "Completed", run
        deployed(client, version=1)
        url = client.get("/deployments/titanic").json()["scoring_url"]
        key = client.post("/deployments/titanic/keys").json()["primary"]

        scorer = Scorer(url, key)
        scorer.start()
        time.sleep(0.5)
        _, canary_at, canaried = deployed(client, version=2, traffic=10)
        time.sleep(1.0)
        _, promote_at, promoted = deployed(client, version=2, traffic=100)
        time.sleep(0.5)
        rollback_at = time.monotonic()
        rolled = client.post("/deployments/titanic/rollback", params={"wait": 60}).json()
        assert rolled["status"] == "Completed" and rolled["version"] == 1
        rolled_back = time.monotonic()
        time.sleep(0.5)
        scorer.stop.set()
        scorer.join(10)

    answers = scorer.answers
    assert len(answers) > 100, len(answers)
    assert [a for a in answers if a[2] != 200] == []  # not one request failed across three switches
    for sent, done, _, version in answers:
        # only v1 before the canary was asked for, only v2 between promotion and rollback, only v1 after it
        if done < canary_at:
            assert version == "1"
        if promoted < sent and done < rollback_at:
            assert version == "2"
        if sent > rolled_back:
            assert version == "1"
        if canaried < sent and done < promote_at:
            assert version in ("1", "2")
    assert any(a[3] == "2" for a in answers if canaried < a[0] and a[1] < promote_at)  # the canary took some

    service.stop()  # the control plane goes away: the endpoint keeps serving
    auth = {"Authorization": f"Bearer {key}"}
    assert httpx.post(f"{url}/api/predict", json=PASSENGER, headers=auth).status_code == 200
    service.start()
    pid = int((Path(service.env["AZML_HOME"]) / "endpoints" / "titanic" / "server.pid").read_text())
    os.kill(pid, signal.SIGKILL)  # noticed by the service's supervisor, started again on the same port

    def serving() -> bool:
        try:
            return httpx.post(f"{url}/api/predict", json=PASSENGER, headers=auth, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(serving, timeout=30)
    answer = httpx.post(f"{url}/api/predict", json=PASSENGER, headers=auth)
    assert answer.headers["x-model-version"] == "1"  # the same version as before it died
    with service.client() as client:
        assert client.get("/deployments/titanic").json()["health"] == "up"
