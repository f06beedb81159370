"""A new user takes a model to production (issue 28): train, promote through a gate, four eyes, fetch by alias.

A real service (uvicorn) with two named tokens, `production` protected and gated on accuracy, runs of a
script whose accuracy is given; then the scripts a pipeline runs, on the same AZML_HOME.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from tests.conftest import run_script
from tests.service.conftest import Service, service_env, upload

ALICE, BOB = "alice-token-for-tests", "bob-token-for-tests"


def test_train_promote_through_the_gate_with_four_eyes_then_fetch_by_alias(tmp_path: Path) -> None:
    env = service_env(
        tmp_path,
        AZML_API_TOKENS=f"alice:{ALICE},bob:{BOB}",
        AZML_SCRIPT="odd_metrics.py",
        AZML_ALIAS_GATES="production=accuracy:max:0.0",
        AZML_PROTECTED_ALIASES="production",
    )
    service = Service(tmp_path, env)
    service.start()
    try:
        alice, bob = service.client(token=ALICE), service.client(token=BOB)
        assert upload(alice, {"a.csv": b"1"}).status_code == 200
        for accuracy in ("0.8", "0.7", "0.9"):
            run = alice.post("/runs", params={"wait": 90}, json={"args": {"accuracy": accuracy}}).json()
            assert run["status"] == "Completed", run

        first = alice.put("/models/svc-model/aliases/production", json={"version": 1, "reason": "first"})
        assert first.status_code == 202, first.text
        approval = first.json()["approval"]
        assert approval["status"] == "pending" and approval["requested_by"] == "alice"
        assert bob.post(f"/approvals/{approval['id']}/approve").json()["status"] == "approved"
        assert alice.get("/models/svc-model/aliases").json()["aliases"][0]["version"] == 1

        worse = alice.put("/models/svc-model/aliases/production", json={"version": 2})
        assert worse.status_code == 409, worse.text  # refused at once: nobody is asked to approve it
        assert "0.7" in worse.json()["detail"] and "0.8" in worse.json()["detail"]

        better = alice.put("/models/svc-model/aliases/production", json={"use_best": True, "reason": "v3 wins"})
        assert better.status_code == 202 and better.json()["approval"]["version"] == 3
        pending = better.json()["approval"]["id"]
        own = alice.post(f"/approvals/{pending}/approve")
        assert own.status_code == 403 and "someone else" in own.json()["detail"]
        assert bob.get("/approvals", params={"status": "pending"}).json()["approvals"][0]["id"] == pending
        approved = bob.post(f"/approvals/{pending}/approve", json={"note": "checked"}).json()
        assert approved["status"] == "approved" and approved["decided_by"] == "bob"
        again = bob.post(f"/approvals/{pending}/approve")
        assert again.status_code == 409  # decided once

        history = alice.get("/models/svc-model/history").json()["history"]
        assert [(h["from"], h["to"], h["by"], h["approved_by"]) for h in history] == [
            (1, 3, "alice", "bob"),
            (None, 1, "alice", "bob"),
        ]
        assert history[0]["gate"]["candidate"] == 0.9 and history[0]["gate"]["holder"] == 0.8
        versions = alice.get("/models/svc-model/versions").json()["versions"]
        assert [v["aliases"] for v in versions] == [[], [], ["production"]]
        alice.close()
        bob.close()
    finally:
        service.stop()

    script_env = {**env, "AZML_OUTPUT_ROOT": str(tmp_path / "out")}
    out = tmp_path / "model-api"
    fetched = run_script(
        "fetch-model.py", "--alias", "production", "--output-path", str(out), env=script_env, cwd=tmp_path
    )
    assert fetched.returncode == 0, fetched.stderr
    metadata = json.loads((out / "metadata.json").read_text())
    assert (metadata["version"], metadata["alias"]) == (3, "production")

    waiting = run_script("promote-model.py", "--alias", "production", "--model-ver", "1", env=script_env, cwd=tmp_path)
    assert waiting.returncode == 4 and "approves" in waiting.stderr  # protected: through the service
    first_staging = run_script(
        "promote-model.py",
        "--alias",
        "staging",
        "--model-ver",
        "2",
        "--gate",
        "accuracy:max:0",
        env=script_env,
        cwd=tmp_path,
    )
    assert first_staging.returncode == 0  # staging was unset: the gate lets the first holder in
    worse = run_script(
        "promote-model.py",
        "--alias",
        "staging",
        "--model-ver",
        "1",
        "--gate",
        "accuracy:min:0.5",
        env=script_env,
        cwd=tmp_path,
    )
    assert worse.returncode == 3 and "refused" in worse.stderr, worse.stdout + worse.stderr
    moved = run_script("promote-model.py", "--alias", "staging", "--use-best", env=script_env, cwd=tmp_path)
    assert moved.returncode == 0 and "svc-model@staging is version 3" in moved.stdout
    assert "##vso[task.setvariable variable=AZML_PROMOTION]moved" in moved.stdout


def test_an_approval_cut_short_by_kill_9_is_carried_out_once_after_restart(tmp_path: Path) -> None:
    """Approving is two steps (recorded `approving`, then the move, then `approved`): a service killed at
    either gap finishes the move when it is back, and never makes it twice."""
    env = service_env(tmp_path, AZML_API_TOKENS=f"alice:{ALICE},bob:{BOB}", AZML_PROTECTED_ALIASES="production")
    service = Service(tmp_path, env)
    db = Path(env["AZML_HOME"]) / "jobs.sqlite"

    def restarted_after(sql: str, *params: object) -> None:
        service.kill9()
        with sqlite3.connect(db) as conn:
            conn.execute(sql, params)
        service.start()
        with service.client(token=ALICE) as alice:
            deadline = time.time() + 30
            while (found := alice.get(f"/approvals/{approval['id']}").json())["status"] != "approved":
                assert time.time() < deadline, found
                time.sleep(0.2)

    service.start()
    try:
        with service.client(token=ALICE) as alice:
            assert upload(alice, {"a.csv": b"1"}).status_code == 200
            assert alice.post("/runs", params={"wait": 90}, json={}).json()["status"] == "Completed"
            approval = alice.put("/models/svc-model/aliases/production", json={"version": 1}).json()["approval"]
        # killed right after bob's approval was recorded, before the move
        restarted_after(
            "UPDATE approvals SET status = 'approving', decided_by = 'bob', decided_at = ? WHERE id = ?",
            time.time(),
            approval["id"],
        )
        # killed after the move, before the approval was recorded approved
        restarted_after("UPDATE approvals SET status = 'approving' WHERE id = ?", approval["id"])
        with service.client(token=ALICE) as alice:
            assert alice.get("/models/svc-model/aliases").json()["aliases"][0]["version"] == 1
            history = alice.get("/models/svc-model/history").json()["history"]
        assert [(h["to"], h["approved_by"], h.get("key")) for h in history] == [(1, "bob", approval["id"])]  # once
    finally:
        service.stop()
