"""POST /schedules and friends in process: a schedule every second starts runs and promotes what they register,
pause and resume, a data trigger fires once per new version, missed ticks follow their policy, refusals."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from fastapi.testclient import TestClient

from tests.service.conftest import assert_refused, tar_bytes

TAR = {"Content-Type": "application/x-tar"}


def until(check, timeout: float = 60):
    deadline = time.time() + timeout
    while not (found := check()):
        assert time.time() < deadline, "timed out"
        time.sleep(0.2)
    return found


def with_data(make_app, **settings: object) -> TestClient:
    client = make_app(**settings)
    assert client.post("/data", params={"wait": 30}, content=tar_bytes({"a.csv": b"1"}), headers=TAR).status_code == 200
    return client


def test_a_schedule_starts_runs_and_promotes_what_they_register(make_app) -> None:
    client = with_data(make_app)
    made = client.post(
        "/schedules",
        json={"name": "nightly", "trigger": {"every": "1s"}, "promote": {"alias": "staging"}},
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["trigger"] == {"every": "1s"} and body["run"]["script"] == "aml_v1_logging.py"  # AZML_* defaults
    assert body["next_fire"] and body["created_by"] and body["fires"] == []
    promoted = until(lambda: [f for f in client.get("/schedules/nightly").json()["fires"] if f["status"] == "promoted"])
    run = client.get(f"/runs/{promoted[0]['run']}").json()
    assert (
        run["schedule"] == {"name": "nightly", "fire": promoted[0]["key"]} and run["created_by"] == "schedule:nightly"
    )
    history = client.get("/models/svc-model/history").json()["history"]
    assert history[-1]["by"] == "schedule:nightly" and run["id"] in history[-1]["reason"]  # the chain, recorded

    paused = client.patch("/schedules/nightly", json={"paused": True}).json()
    assert paused["paused"] is True and paused["next_fire"] is None
    time.sleep(1.5)  # a fire already being written may still land; none after it
    count = len(client.get("/runs", params={"limit": 200}).json()["items"])
    time.sleep(2.5)
    assert len(client.get("/runs", params={"limit": 200}).json()["items"]) == count
    assert client.patch("/schedules/nightly", json={"paused": False}).json()["next_fire"]
    assert [s["name"] for s in client.get("/schedules").json()["schedules"]] == ["nightly"]
    assert client.delete("/schedules/nightly").json() == {"name": "nightly", "deleted": True}
    assert_refused(client.get("/schedules/nightly"), 404, "nightly")


def test_ticks_missed_while_no_replica_ran_fire_once_or_are_skipped(make_app, tmp_path: Path) -> None:
    client = with_data(make_app)
    for name, missed in (("catch-up", "once"), ("no-catch-up", "skip")):
        body = {"name": name, "trigger": {"cron": "0 3 * * *", "timezone": "Europe/London"}, "missed": missed}
        assert client.post("/schedules", json=body).status_code == 201
    with sqlite3.connect(tmp_path / "aml" / "jobs.sqlite") as db:  # as if every replica was down for 5 days
        db.execute("UPDATE schedules SET next_at = ?", (time.time() - 5 * 86400,))
    once = until(lambda: client.get("/schedules/catch-up").json()["fires"])
    assert len(once) == 1 and once[0]["run"]
    assert "tick(s) missed while no replica ran; fired once" in once[0]["outcome"], once  # 6: the 5 days
    skipped = until(lambda: client.get("/schedules/no-catch-up").json()["fires"])
    assert [(f["status"], f["run"]) for f in skipped] == [("skipped", None)] and "skipped" in skipped[0]["outcome"]
    time.sleep(1.5)
    assert len(client.get("/schedules/catch-up").json()["fires"]) == 1  # never replayed one by one
    nxt = client.get("/schedules/catch-up").json()["next_fire"]
    assert nxt.endswith(("03:00:00+00:00", "02:00:00+00:00"))  # 03:00 in London, in UTC


def test_a_data_trigger_fires_once_per_new_version_and_its_run_reads_it(make_app) -> None:
    client = with_data(make_app)
    assert (
        client.post("/schedules", json={"name": "on-new-data", "trigger": {"on_data": "test-data"}}).status_code == 201
    )
    time.sleep(6)  # a pass of the data watch: the data there when it was made is not new
    assert client.get("/schedules/on-new-data").json()["fires"] == []
    upload = client.post("/data", params={"wait": 30}, content=tar_bytes({"b.csv": b"2"}), headers=TAR).json()
    fired = until(lambda: client.get("/schedules/on-new-data").json()["fires"], timeout=30)
    assert fired[0]["key"] == f"data:{upload['digest']}"
    run = client.get(f"/runs/{fired[0]['run']}", params={"wait": 60}).json()
    assert run["status"] == "Completed" and run["data_version"] == upload["digest"]
    time.sleep(6)
    assert len(client.get("/schedules/on-new-data").json()["fires"]) == 1  # one fire per version, not per poll


def test_what_is_refused_and_how_it_reads(make_app) -> None:
    client = with_data(make_app)
    cases = [
        ({"name": "a", "trigger": {"cron": "61 * * * *"}}, "not a cron expression"),
        ({"name": "a", "trigger": {"cron": "0 3 * * *", "timezone": "Mars/Olympus"}}, "not a time zone"),
        ({"name": "a", "trigger": {"every": "0.1s"}}, "between 1 s"),
        ({"name": "a", "trigger": {"every": "soon"}}, "number and a unit"),
        ({"name": "a", "trigger": {"every": "1h", "cron": "* * * * *"}}, "exactly one"),
        ({"name": "a", "trigger": {"on_data": "../up"}}, "on_data"),
        ({"name": "a", "trigger": {"every": "1h"}, "run": {"script": "../x.py"}}, "script"),
        ({"name": "a", "trigger": {"every": "1h"}, "promote": {"alias": "Prod"}}, "alias"),
        ({"name": "Bad Name", "trigger": {"every": "1h"}}, "name"),
    ]
    for body, words in cases:
        answer = client.post("/schedules", json=body)
        assert answer.status_code in (400, 422), (body, answer.text)
        assert words in answer.text, (body, answer.text)
    assert client.post("/schedules", json={"name": "a", "trigger": {"every": "1h"}}).status_code == 201
    assert_refused(client.post("/schedules", json={"name": "a", "trigger": {"every": "1h"}}), 409, "exists")
    assert_refused(client.patch("/schedules/none", json={"paused": True}), 404, "none")


def test_the_retention_sweep_keeps_what_a_schedules_history_points_at(make_app) -> None:
    import asyncio

    from service.core.jobs import TERMINAL_NAMES

    client = with_data(make_app)
    assert client.post("/schedules", json={"name": "often", "trigger": {"every": "1s"}}).status_code == 201
    until(lambda: len([f for f in client.get("/schedules/often").json()["fires"] if f["status"] == "completed"]) >= 3)
    client.patch("/schedules/often", json={"paused": True})
    store = client.app.state.services.store
    kept = {f["run"] for f in client.get("/schedules/often").json()["fires"]}
    swept = {job.id for job in store.expired(TERMINAL_NAMES, ended_before=time.time() + 10)}
    assert kept and not kept & swept  # the runs the history names are not the sweep's
    asyncio.run(store.write(lambda tx: tx.prune_fires(before=None, keep=2)))
    left = client.get("/schedules/often").json()["fires"]
    assert len(left) == 2 or all(f["status"] == "running" for f in left[2:])
    swept = {job.id for job in store.expired(TERMINAL_NAMES, ended_before=time.time() + 10)}
    assert kept - {f["run"] for f in left} <= swept  # forgotten fires' runs are the sweep's again
