"""service/core/job_bodies.py: a job's answer kept per stored row, on both stores, and GET /runs/{id} through it."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.responses import JSONResponse

from amllib.backends.base import RunStatus
from service.core.job_bodies import JobBodies
from service.core.schemas import render
from service.core.store import Job, JobStore
from tests.service.conftest import assert_refused, upload
from tests.service.core.test_store import open_store, store_url  # noqa: F401  (the fixture, both stores)


@pytest.fixture
def store(store_url: str) -> JobStore:  # noqa: F811
    opened = open_store(store_url)
    yield opened
    opened.close()


def a_run(job_id: str) -> Job:
    spec = {"experiment": "e", "script": "s.py", "model": "m", "datapath": "d", "compute": "c", "created_by": "ci"}
    return Job(id=job_id, kind="run", status=RunStatus.QUEUED, spec=spec, created_at=1_700_000_000.0)


def test_a_body_is_what_the_job_renders_to_and_follows_every_change_of_its_row(store: JobStore) -> None:
    asyncio.run(store.write(lambda tx: tx.insert_job(a_run("run_b1"))))
    bodies = JobBodies("local")
    first = bodies.body(store.row("run_b1"))
    assert first == JSONResponse(render(store.get("run_b1"), "local")).body
    assert bodies.body(store.row("run_b1")) is first  # the same row: the bytes made for it before

    result = {"metrics": {"accuracy": 0.93, "odd": float("nan")}, "data_version": "sha256:ab"}
    asyncio.run(store.write(lambda tx: tx.update_job("run_b1", {"status": RunStatus.COMPLETED, "result": result})))
    changed = json.loads(bodies.body(store.row("run_b1")))
    assert changed["status"] == "Completed" and changed["metrics"] == {"accuracy": 0.93, "odd": "NaN"}
    asyncio.run(store.write(lambda tx: tx.update_job("run_b1", {"callback_status": "delivered"})))
    assert json.loads(bodies.body(store.row("run_b1")))["callback_status"] == "delivered"


def test_bodies_kept_are_bounded(store: JobStore) -> None:
    bodies = JobBodies("local", size=3)
    for index in range(5):
        asyncio.run(store.write(lambda tx, i=index: tx.insert_job(a_run(f"run_n{i}"))))
        bodies.body(store.row(f"run_n{index}"))
    assert len(bodies._bodies) == 3
    assert store.row("run_missing") is None


def test_get_run_answers_from_the_row_and_sees_each_change(make_app) -> None:
    client = make_app()
    assert upload(client, {"a.csv": b"1,2\n3,4\n"}).status_code == 200
    data_id = client.get("/data", params={"limit": 1}).json()["items"][0]["id"]
    run_id = client.post("/runs", json={}).json()["id"]
    ended = client.get(f"/runs/{run_id}", params={"wait": 60}).json()  # answered after waiting: built afresh
    assert ended["status"] == "Completed", ended["error"]
    polled = client.get(f"/runs/{run_id}")  # answered from the row
    assert polled.status_code == 200 and polled.headers["content-type"] == "application/json"
    assert polled.json() == ended
    assert client.head(f"/runs/{run_id}").status_code == 200
    assert client.get("/runs", params={"ids": run_id}).json()["items"] == [ended]
    assert client.get(f"/runs/{ended['backend_run_id']}").json()["id"] == run_id  # by its backend id, as before
    assert_refused(client.get(f"/runs/{data_id}"), 404, "not found")  # another kind's job is no run
