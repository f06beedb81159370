"""A job store that loses its connections or goes away for a while (issue 26, item 3).

The service on PostgreSQL trains four runs while every connection it holds is cut again and
again (pg_terminate_backend), then while the database refuses connections for a few seconds.
Every run completes and registers once (a store error is never a job's outcome); every read
meanwhile answers 200, or 503 with Retry-After, never 500.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg

from tests.service.conftest import Service, service_env, upload

RUNS = 4


def cut(admin: psycopg.Connection, database: str) -> int:
    """Terminate every connection to the service's database but this one; how many there were."""
    found = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (database,),
    ).fetchall()
    return len(found)


class Reader(threading.Thread):
    """Reads a run and the runs list over and over, counting the answers' statuses."""

    def __init__(self, url: str, headers: dict[str, str], run_id: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=url, headers=headers, timeout=30)
        self.run_id = run_id
        self.statuses: Counter[int] = Counter()
        self.no_retry_after = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for path in (f"/runs/{self.run_id}", "/runs?limit=5", f"/runs/{self.run_id}/metrics"):
                answer = self.client.get(path)
                self.statuses[answer.status_code] += 1
                if answer.status_code == 503 and "retry-after" not in answer.headers:
                    self.no_retry_after += 1
            time.sleep(0.02)
        self.client.close()


def patiently(client: httpx.Client, path: str, **params: object) -> dict:
    """GET as a client that honours 503's Retry-After would (the store may be coming back)."""
    for _ in range(30):
        answer = client.get(path, params=params)
        if answer.status_code != 503:
            assert answer.status_code == 200, answer.text
            return answer.json()
        time.sleep(float(answer.headers["retry-after"]))
    raise AssertionError(f"{path} answered 503 for a minute")


def test_runs_complete_and_register_once_while_the_store_is_cut_and_goes_away(
    tmp_path: Path, postgres_url: str, postgres_server: str
) -> None:
    database = urlsplit(postgres_url).path.lstrip("/")
    env = service_env(tmp_path, AZML_DB_URL=postgres_url, AZML_SCRIPT="sleep_and_record.py")
    service = Service(tmp_path, env)
    service.start()
    try:
        with service.client() as client, psycopg.connect(postgres_server, autocommit=True) as admin:
            assert upload(client, {"train.csv": b"a,b\n1,2\n"}).status_code == 200
            runs = [client.post("/runs", json={"args": {"seconds": "4"}}).json() for _ in range(RUNS)]
            reader = Reader(service.url, dict(client.headers), runs[0]["id"])
            reader.start()
            cuts = 0
            for _ in range(12):  # ~3 s of connections cut every quarter second while the runs train
                cuts += cut(admin, database)
                time.sleep(0.25)
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            try:
                cut(admin, database)
                time.sleep(3)  # no connection at all for 3 s
                down = client.get(f"/runs/{runs[1]['id']}")
                assert down.status_code == 503, down.text
                assert down.json()["error"] == "store_unavailable" and down.headers["retry-after"]
            finally:
                admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            ended = [patiently(client, f"/runs/{run['id']}", wait=60) for run in runs]
            reader.stop.set()
            reader.join(timeout=30)

            assert cuts > 0
            assert [run["status"] for run in ended] == ["Completed"] * RUNS, [(r["status"], r["error"]) for r in ended]
            made = sorted(run["model_version"]["version"] for run in ended)
            assert made == list(range(1, RUNS + 1)), made  # each registered once
            versions = client.get("/models/svc-model/versions").json()["versions"]
            assert len(versions) == RUNS
            assert set(reader.statuses) <= {200, 503}, reader.statuses
            assert reader.statuses[200] > 0 and reader.no_retry_after == 0
    finally:
        service.stop()
    assert "Traceback" not in service.log.read_text()
