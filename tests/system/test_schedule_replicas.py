"""Issue 30's proof: a schedule every 2 s for 30 s on three replicas over PostgreSQL, one replica killed with
`kill -9` twice: every tick starts one run, none starts two, and no tick is skipped; the same on SQLite with
the one process killed and started again."""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from tests.service.conftest import Service, service_env, upload
from tests.system.test_replicas import LEASE, rows, start_replicas

SECONDS = 30.0
EVERY = 2.0


def ticks_and_runs(fires: list[tuple]) -> tuple[list[float], Counter]:
    """(the ticks fired, sorted; how many fires named each run job)."""
    ticks = sorted(datetime.fromisoformat(key).timestamp() for key, _ in fires)
    return ticks, Counter(job for _, job in fires)


def check(fires: list[tuple], started: float, stopped: float) -> None:
    """Each tick once, one run job per fire, no tick left out between the first and the last."""
    ticks, per_job = ticks_and_runs(fires)
    assert len(ticks) == len(set(ticks)), "a tick fired twice"
    assert all(job and count == 1 for job, count in per_job.items()), per_job
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(ticks)]
    assert set(gaps) == {EVERY}, f"a tick was skipped: gaps {gaps}"
    assert len(ticks) >= int((stopped - started) / EVERY) - 2, len(ticks)  # the first and last may fall outside


@pytest.mark.timeout(300)
def test_three_replicas_one_killed_twice_fire_each_tick_once(tmp_path: Path, postgres_url: str) -> None:
    replicas = start_replicas(tmp_path, postgres_url, 3, AZML_SCRIPT="aml_v1_logging.py")
    try:
        with replicas[0].client() as client:
            upload(client, {"a.csv": b"1"})
            made = client.post("/schedules", json={"name": "tick", "trigger": {"every": f"{EVERY:g}s"}})
            assert made.status_code == 201, made.text
        started = time.time()
        for victim in (1, 2):  # one replica killed mid-way, twice (each time another), and started again
            time.sleep(SECONDS / 3)
            replicas[victim].kill9()
            replicas[victim].start()
        time.sleep(SECONDS / 3)
        with replicas[0].client() as client:
            assert client.patch("/schedules/tick", json={"paused": True}).status_code == 200
        stopped = time.time()
        time.sleep(2 * LEASE + 1)  # a fire written just before the pause has its run job by now
        fires = rows(postgres_url, "SELECT fire_key, job_id FROM schedule_fires WHERE schedule = 'tick'")
        check(fires, started, stopped)
        jobs = {job for _, job in fires}
        found = {job for (job,) in rows(postgres_url, "SELECT id FROM jobs WHERE kind = 'run'")}
        assert jobs <= found and len(found) == len(jobs), "a fire without its run, or a run without its fire"
    finally:
        for replica in replicas:
            replica.stop()


@pytest.mark.timeout(300)
def test_on_sqlite_a_restarted_process_carries_on(tmp_path: Path) -> None:
    service = Service(tmp_path, service_env(tmp_path, AZML_SCRIPT="aml_v1_logging.py"))
    service.start()
    try:
        with service.client() as client:
            upload(client, {"a.csv": b"1"})
            assert client.post("/schedules", json={"name": "tick", "trigger": {"every": "2s"}}).status_code == 201
        started = time.time()
        time.sleep(SECONDS / 2)
        service.kill9()
        service.start()  # back within seconds: the ticks meanwhile are late by less than CATCH_UP and fire, each
        time.sleep(SECONDS / 2)
        with service.client() as client:
            assert client.patch("/schedules/tick", json={"paused": True}).status_code == 200
        stopped = time.time()
        time.sleep(1)
        with sqlite3.connect(Path(service.env["AZML_HOME"]) / "jobs.sqlite") as db:
            fires = db.execute("SELECT fire_key, job_id FROM schedule_fires WHERE schedule = 'tick'").fetchall()
            found = {job for (job,) in db.execute("SELECT id FROM jobs WHERE kind = 'run'")}
        check(fires, started, stopped)
        assert {job for _, job in fires} == found
    finally:
        service.stop()
