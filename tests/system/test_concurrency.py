"""200 mixed requests at the same moment: no 5xx, no "database is locked", every accepted job ends."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx

from tests.service.conftest import Service, tar_bytes, upload

CALLERS = 200
TERMINAL = {"Completed", "Failed", "Canceled"}


def test_200_concurrent_mixed_requests(make_service) -> None:
    service: Service = make_service(AZML_JOB_CONCURRENCY="4", AZML_COMPUTE_MAX_NODES="4")
    with service.client() as client:
        upload(client, {"train.csv": b"a,b\n1,2\n"})
        first = client.post("/runs", params={"wait": 60}, json={}).json()
        assert first["status"] == "Completed", first
        targets = [
            client.post("/runs", json={"script": "sleep_and_record.py", "args": {"seconds": "30"}}).json()["id"]
            for _ in range(10)
        ]

    rng = random.Random(200)
    barrier = threading.Barrier(CALLERS)
    answers: list[tuple[str, int, dict | None]] = []
    lock = threading.Lock()

    def make_call(kind: str, index: int) -> Callable[[httpx.Client], httpx.Response]:
        if kind == "upload":
            body = tar_bytes({f"part/{index}.csv": f"{index},{index}\n".encode() * rng.randint(1, 5000)})
            path = f"burst-{index % 3}"
            headers = {"Content-Type": "application/x-tar"}
            return lambda c: c.post("/data", params={"path": path}, content=body, headers=headers)
        if kind == "submit":
            return lambda c: c.post("/runs", json={"script": "sleep_and_record.py", "args": {"seconds": "0.2"}})
        if kind == "read":
            route = rng.choice([f"/runs/{first['id']}", "/runs", "/data", "/models/svc-model/versions", "/metrics"])
            return lambda c: c.get(route)
        if kind == "fetch":
            return lambda c: c.post("/models/fetch", json={"output_path": f"burst-{index % 5}", "use_best": True})
        target = targets[index % len(targets)]
        return lambda c: c.post(f"/runs/{target}/cancel")

    kinds = ["upload"] * 40 + ["submit"] * 40 + ["read"] * 60 + ["fetch"] * 30 + ["cancel"] * 30
    calls = [(kind, make_call(kind, index)) for index, kind in enumerate(kinds)]
    rng.shuffle(calls)

    def caller(kind: str, call: Callable[[httpx.Client], httpx.Response]) -> None:
        with service.client() as own:
            barrier.wait()
            answer = call(own)
            body = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else None
            with lock:
                answers.append((kind, answer.status_code, body))

    threads = [threading.Thread(target=caller, args=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(answers) == CALLERS

    statuses = Counter((kind, status) for kind, status, _ in answers)
    assert not [entry for entry in statuses if entry[1] >= 500], statuses
    # A cancel may find its run already ended by an earlier cancel: 409 "already ended" is a correct answer.
    refused = [body for kind, status, body in answers if status == 409]
    assert all(kind == "cancel" for kind, status, _ in answers if status == 409), statuses
    assert all(body and body["error"] == "conflict" and "already ended" in body["detail"] for body in refused), refused
    assert all(status in (200, 202, 409) for _, status, _ in answers), statuses
    accepted = {body["id"]: kind for kind, status, body in answers if status == 202 and body and "id" in body}
    assert len(accepted) >= 40 + 40 + 30  # every upload, submit and fetch was accepted

    readers = {"upload": "/data", "submit": "/runs", "fetch": "/models/fetch", "cancel": "/runs"}
    deadline = time.time() + 180
    with service.client() as client:
        for job_id, kind in accepted.items():
            while (job := client.get(f"{readers[kind]}/{job_id}").json())["status"] not in TERMINAL:
                assert time.time() < deadline, f"{job_id} never ended: {job}"
                time.sleep(0.2)
            assert kind == "cancel" or job["status"] == "Completed", job
        for target in targets:
            assert client.get(f"/runs/{target}").json()["status"] == "Canceled"
    text = service.log.read_text()
    assert "database is locked" not in text and "Traceback" not in text
