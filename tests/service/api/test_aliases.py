"""service/api/aliases.py and service/promotions.py in process: the refusals, archive, removal, expiry, the gate
judged again at approval (the happy path with four eyes is tests/system/test_promotion.py)."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import READ_TOKEN, assert_refused, tar_bytes

TAR = {"Content-Type": "application/x-tar"}
ALICE, BOB = "alice-token", "bob-token"


def trained(make_app, count: int, **settings: object) -> tuple[TestClient, TestClient]:
    alice = make_app(token=ALICE, api_tokens=f"alice:{ALICE},bob:{BOB}", **settings)
    bob = TestClient(alice.app, base_url="http://127.0.0.1:8000", headers={"Authorization": f"Bearer {BOB}"})
    assert alice.post("/data", params={"wait": 30}, content=tar_bytes({"a.csv": b"1"}), headers=TAR).status_code == 200
    for index in range(count):
        assert alice.post("/runs", params={"wait": 60}, json={}).json()["status"] == "Completed"
        alice.patch(f"/models/svc-model/versions/{index + 1}", json={"tags": {"accuracy": 0.7 + index / 10}})
    return alice, bob


def test_what_is_refused_and_how_it_reads(make_app) -> None:
    alice, _ = trained(make_app, 2)
    assert_refused(alice.get("/models/nope/aliases"), 404, "model 'nope' not found")
    assert_refused(alice.put("/models/nope/aliases/production", json={"version": 1}), 404, "nope")
    assert alice.put("/models/svc-model/aliases/Production", json={"version": 1}).status_code == 422
    assert_refused(
        alice.put("/models/svc-model/aliases/production", json={"version": 1, "use_best": True}), 422, "one of"
    )
    assert_refused(alice.put("/models/svc-model/aliases/production", json={}), 422, "one of")
    assert_refused(alice.put("/models/svc-model/aliases/production", json={"version": 9}), 404, "no version 9")
    bad_gate = {"version": 1, "gate": {"metric": "accuracy", "min_delta": "inf"}}
    assert alice.put("/models/svc-model/aliases/production", json=bad_gate).status_code == 422
    reader = TestClient(alice.app, base_url="http://127.0.0.1:8000", headers={"Authorization": f"Bearer {READ_TOKEN}"})
    assert reader.put("/models/svc-model/aliases/production", json={"version": 1}).status_code == 403
    assert reader.get("/models/svc-model/aliases").status_code == 200
    assert_refused(alice.post("/approvals/appr_nope/approve"), 404, "appr_nope")
    assert_refused(alice.delete("/models/svc-model/aliases/staging"), 404, "no alias 'staging'")


def test_archive_keeps_a_version_from_new_aliases_and_from_latest(make_app) -> None:
    alice, _ = trained(make_app, 2)
    archived = alice.patch("/models/svc-model/versions/2", json={"archived": True, "description": "bad data"}).json()
    assert archived["archived"] is True and archived["description"] == "bad data"
    assert_refused(alice.put("/models/svc-model/aliases/staging", json={"version": 2}), 409, "archived")
    staged = alice.put("/models/svc-model/aliases/staging", json={"use_best": True}).json()
    assert staged["version"] == 1  # the best that is not archived
    fetched = alice.post("/models/fetch", params={"wait": 30}, json={"output_path": "latest"}).json()
    assert fetched["version"] == 1
    assert alice.get("/models/svc-model/versions").json()["versions"][1]["archived"] is True
    removed = alice.request("DELETE", "/models/svc-model/aliases/staging", json={"reason": "done"})
    assert removed.status_code == 200 and removed.json()["removed"] is True
    assert alice.get("/models/svc-model/aliases").json()["aliases"] == []
    assert alice.get("/models/svc-model/history").json()["history"][0]["reason"] == "done"
    assert alice.patch("/models/svc-model/versions/2", json={"archived": False}).json()["archived"] is False


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path) -> dict:
    return {} if request.param == "sqlite" else {"db_url": request.getfixturevalue("postgres_url")}


def test_an_approval_expires_and_the_gate_is_judged_again_when_approved(make_app, store: dict) -> None:
    alice, bob = trained(
        make_app,
        3,
        **store,
        protected_aliases="production",
        alias_gates="production=accuracy:max:0.0",
        approval_hours=0.0003,  # about a second
    )
    first = alice.put("/models/svc-model/aliases/production", json={"version": 1}).json()["approval"]
    time.sleep(1.5)
    assert_refused(bob.post(f"/approvals/{first['id']}/approve"), 409, "expired")
    assert alice.get("/approvals", params={"status": "expired"}).json()["approvals"][0]["id"] == first["id"]

    low = alice.put("/models/svc-model/aliases/production", json={"version": 2}).json()["approval"]
    high = alice.put("/models/svc-model/aliases/production", json={"version": 3}).json()["approval"]
    assert bob.post(f"/approvals/{high['id']}/approve").json()["status"] == "approved"  # now 3 holds it
    late = bob.post(f"/approvals/{low['id']}/approve")  # 2 does not beat 3: the gate, judged again, refuses
    assert_refused(late, 409, "does not beat version 3")
    assert alice.get(f"/approvals/{low['id']}").json()["status"] == "failed"
    assert alice.get("/models/svc-model/aliases").json()["aliases"][0]["version"] == 3
    rejected = alice.put("/models/svc-model/aliases/production", json={"version": 3, "reason": "again"}).json()
    assert (
        bob.post(f"/approvals/{rejected['approval']['id']}/reject", json={"note": "no"}).json()["status"] == "rejected"
    )


def test_check_says_what_a_move_would_do_and_changes_nothing(make_app) -> None:
    alice, _ = trained(make_app, 2, protected_aliases="production", alias_gates="staging=accuracy:max:0.05")
    url = "/models/svc-model/aliases/staging/check"
    first = alice.get(url, params={"version": 1}).json()
    assert first["outcome"] == "moves" and first["holder"] is None and first["candidate"]["figure"] == 0.7
    assert alice.put("/models/svc-model/aliases/staging", json={"version": 1}).status_code == 200
    second = alice.get(url, params={"version": 2}).json()  # 0.8 against 0.7: beats it by 0.1 ≥ 0.05
    assert second["outcome"] == "moves" and second["holder"] == {"version": 1, "figure": 0.7}
    refused = alice.get(url, params={"version": 2, "gate": "accuracy:max:0.2"}).json()
    assert refused["outcome"] == "refused" and refused["verdict"]["passed"] is False and refused["verdict"]["reason"]
    reader = TestClient(alice.app, base_url="http://127.0.0.1:8000", headers={"Authorization": f"Bearer {READ_TOKEN}"})
    protected = reader.get("/models/svc-model/aliases/production/check", params={"use_best": "true"}).json()
    assert protected["outcome"] == "asks_approval" and protected["protected"] is True
    assert protected["candidate"]["version"] == 2
    assert alice.get("/models/svc-model/aliases").json()["aliases"][0]["version"] == 1  # nothing moved
    assert alice.get("/approvals").json()["approvals"] == []
    assert_refused(alice.get(url, params={"version": 1, "gate": "a:sideways"}), 422, "max or min")
    assert_refused(alice.get(url), 422, "one of")
    assert_refused(alice.get("/models/svc-model/aliases/Bad/check", params={"version": 1}), 422, "alias")
    assert_refused(alice.get(url, params={"version": 9}), 404, "no version 9")
