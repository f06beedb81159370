"""Runs that log what JSON can't hold (NaN, ±inf, 1e400, NUL) on both job stores: listed, sorted, fetched,
and the service starts again with them in its store (issue 26, item 1)."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import psycopg
import pytest

from amllib.jsonsafe import dumps, json_safe
from tests.service.conftest import Service, service_env, upload


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    return request.getfixturevalue("postgres_url")


# What revision 0008 added to jobs (columns, their indexes, the metrics table): a 0003 store has none of it.
PAST_0003 = [
    "DROP TABLE run_params",  # 0010's
    "DROP INDEX jobs_kind_name",  # 0009's
    "ALTER TABLE jobs DROP COLUMN archived",
    "ALTER TABLE jobs DROP COLUMN name",
    *(
        f"DROP INDEX jobs_{c}"
        for c in ("experiment", "script", "started_by", "created_by", "data_version", "status", "started", "duration")
    ),
    "DROP INDEX jobs_pending",
    "DROP INDEX jobs_finished",
    "DROP INDEX jobs_kind_status_finished",
    "ALTER TABLE jobs DROP COLUMN pending",
    "DROP INDEX IF EXISTS jobs_id_prefix",  # PostgreSQL's alone
    "DROP INDEX IF EXISTS jobs_run_prefix",
    "DROP TABLE run_metrics",
    *(
        f"ALTER TABLE jobs DROP COLUMN {c}"
        for c in ("experiment", "script", "started_by", "created_by", "data_version")
    ),
]


def test_json_safe_names_what_json_cannot_hold() -> None:
    odd = {"a": math.nan, "b": math.inf, "c": -math.inf, "d": 10**400, "e": -(10**400), "f\x00": "x\x00y", "g": [1.5]}
    assert json_safe(odd) == {
        "a": "NaN",
        "b": "Infinity",
        "c": "-Infinity",
        "d": "Infinity",
        "e": "-Infinity",
        "f\ufffd": "x\ufffdy",
        "g": [1.5],
    }
    assert json.loads(dumps({"ok": 10**300, "flag": True, "n": None})) == {"ok": 10**300, "flag": True, "n": None}


def start(tmp_path: Path, db_url: str) -> Service:
    service = Service(tmp_path, service_env(tmp_path, AZML_DB_URL=db_url, AZML_SCRIPT="odd_metrics.py"))
    service.start()
    return service


def test_a_run_logging_nan_inf_and_nul_completes_and_every_read_still_answers(tmp_path: Path, db_url: str) -> None:
    service = start(tmp_path, db_url)
    try:
        with service.client() as client:
            assert upload(client, {"train.csv": b"a,b\n1,2\n"}).status_code == 200
            odd = client.post("/runs", params={"wait": 90}, json={"args": {"accuracy": "inf"}})
            assert odd.status_code == 200, odd.text
            run = odd.json()
            assert run["status"] == "Completed", run
            metrics = run["metrics"]
            assert metrics["loss"] == "NaN" and metrics["gain"] == "Infinity" and metrics["drop"] == "-Infinity"
            assert metrics["huge"] == "Infinity" and metrics["note"] == "before\ufffdafter"
            assert metrics["tiny"] == 1e-300 and metrics["accuracy"] == "Infinity"
            sane = client.post("/runs", params={"wait": 90}, json={"args": {"accuracy": "0.8"}}).json()
            assert sane["status"] == "Completed", sane
            assert sane["model_version"]["version"] == 2

            assert client.get(f"/runs/{run['id']}").json()["metrics"]["loss"] == "NaN"
            history = client.get(f"/runs/{run['id']}/metrics").json()["metrics"]
            assert history["loss"] == ["NaN"] and history["huge"] == ["Infinity"]
            compared = client.get("/runs/metrics", params={"ids": f"{run['id']},{sane['id']}"})
            assert compared.status_code == 200, compared.text
            assert client.get("/runs", params={"data_version": run["data_version"]}).json()["items"]
            for name in ("accuracy", "loss", "huge", "note", "tiny"):
                for order in ("asc", "desc"):
                    page = client.get("/runs", params={"sort": f"metrics.{name}", "order": order, "limit": 1})
                    assert page.status_code == 200, (name, order, page.text)
                    if name == "accuracy":  # Infinity is no number: the run with 0.8 comes first either way
                        assert page.json()["items"][0]["id"] == sane["id"]
                    cursor = page.json()["next_cursor"]
                    rest = client.get("/runs", params={"sort": f"metrics.{name}", "order": order, "cursor": cursor})
                    assert rest.status_code == 200, rest.text

            versions = client.get("/models/svc-model/versions").json()["versions"]
            assert versions[0]["tags"]["accuracy"] == "Infinity"  # shown, never a score
            fetched = client.post(
                "/models/fetch", params={"wait": 60}, json={"use_best": True, "output_path": "best"}
            ).json()
            assert fetched["status"] == "Completed" and fetched["version"] == 2, fetched
            assert client.get("/models/summary").status_code == 200

        service.stop()
        service.start()  # the store holds those values: the service starts, leases renew, reads answer
        with service.client() as client:
            assert client.get(f"/runs/{run['id']}").json()["metrics"]["gain"] == "Infinity"
            assert client.get("/runs", params={"sort": "metrics.loss"}).status_code == 200
    finally:
        service.stop()


POISONED = '{"metrics": {"loss": NaN, "gain": Infinity, "note": "a\\u0000b"}, "data_version": "v1"}'


def test_a_store_written_before_the_fix_is_mended_when_it_is_opened(tmp_path: Path, db_url: str) -> None:
    """Rows holding NaN/Infinity/\\u0000 (what json.dumps wrote before) are rewritten by migration 0004."""
    service = start(tmp_path, db_url)
    with service.client() as client:
        upload(client, {"train.csv": b"a,b\n1,2\n"})
    service.stop()
    execute(db_url, f"UPDATE jobs SET result = '{POISONED}'")
    execute(db_url, "UPDATE alembic_version SET version_num = '0003'")
    for table in (
        "approvals",
        "notifications",
        "cursors",
        "schedules",
        "schedule_fires",
    ):  # made by later revisions: a 0003 store has none
        execute(db_url, f"DROP TABLE {table}")
    for statement in PAST_0003:
        execute(db_url, statement)

    service.start()
    try:
        with service.client() as client:
            items = client.get("/data", params={"limit": 5})
            assert items.status_code == 200, items.text
            assert client.get("/runs", params={"data_version": "v1"}).status_code == 200
        (result,) = execute(db_url, "SELECT result FROM jobs")[0]
        assert json.loads(result)["metrics"] == {"loss": "NaN", "gain": "Infinity", "note": "a\ufffdb"}
    finally:
        service.stop()


def execute(db_url: str, sql: str) -> list[tuple]:
    if db_url.startswith("sqlite:///"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
            return db.execute(sql).fetchall()
    with psycopg.connect(db_url, autocommit=True) as db:
        cursor = db.execute(sql)
        return cursor.fetchall() if cursor.description else []


def test_tags_and_best_ignore_non_finite_values() -> None:
    from amllib.backends.base import tag_number
    from amllib.training import model_tags

    assert tag_number("Infinity") is None and tag_number(math.inf) is None and tag_number("NaN") is None
    assert tag_number("0.93") == 0.93 and tag_number(10**400) is None
    assert model_tags({"accuracy": [0.5, math.nan]}) == {"accuracy": "NaN"}
    assert model_tags({"accuracy": [0.5, 0.9]}) == {"accuracy": 0.9}
