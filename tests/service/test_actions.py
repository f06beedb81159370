"""service/actions.py through the API: idempotent creation, and who asked recorded on every job."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.service.conftest import Service, upload


def test_idempotency_key_replays_and_conflicts(service: Service) -> None:
    with service.client() as client:
        upload(client, {"a.csv": b"1"})
        body = {"script": "sleep_and_record.py", "args": {"seconds": 0.2}}

        def post(_: int) -> httpx.Response:
            with service.client() as own:
                return own.post("/runs", json=body, headers={"Idempotency-Key": "deploy-42"})

        with ThreadPoolExecutor(20) as pool:
            responses = list(pool.map(post, range(20)))
        assert {r.status_code for r in responses} == {202}
        assert len({r.json()["id"] for r in responses}) == 1
        assert sum(1 for r in responses if r.headers.get("idempotent-replayed")) == 19
        assert len(client.get("/runs").json()["items"]) == 1

        conflict = client.post("/runs", json={**body, "estimators": 3}, headers={"Idempotency-Key": "deploy-42"})
        assert conflict.status_code == 409 and "deploy-42" in conflict.json()["detail"]

        first = upload(client, {"b.csv": b"2"}, headers={"Idempotency-Key": "data-1"})
        again = upload(client, {"b.csv": b"2"}, headers={"Idempotency-Key": "data-1"})
        assert first.json()["id"] == again.json()["id"]
        assert upload(client, {"b.csv": b"3"}, headers={"Idempotency-Key": "data-1"}).status_code == 409


def test_named_tokens_record_who_did_what(make_service) -> None:

    bare = "a-bare-token-without-name"
    service = make_service(AZML_API_TOKENS=f"ci:ci-secret-token,{bare}", AZML_API_READ_TOKENS="dash:read-secret")
    hashed = "token-" + hashlib.sha256(bare.encode()).hexdigest()[:8]
    with (
        service.client("ci-secret-token") as ci,
        service.client(bare) as other,
        service.client("read-secret") as reader,
    ):
        data = upload(ci, {"a.csv": b"1"}).json()
        assert data["created_by"] == "ci"
        run = other.post("/runs", params={"wait": 60}, json={}).json()
        assert run["created_by"] == hashed
        assert reader.get(f"/runs/{run['id']}").json()["created_by"] == hashed
        assert reader.post("/runs", json={}).status_code == 403
    login = httpx.post(f"{service.url}/ui/login", data={"token": "ci-secret-token", "next": "/ui/"})
    assert login.status_code == 303
    cookie = login.cookies["azml_session"]
    page = httpx.get(f"{service.url}/ui/", cookies={"azml_session": cookie})
    csrf = page.text.split('name="csrf" content="')[1].split('"')[0]
    made = httpx.post(
        f"{service.url}/runs", json={}, cookies={"azml_session": cookie}, headers={"X-CSRF-Token": csrf}
    ).json()
    assert made["created_by"] == "ci"
    service.stop()
    log = service.log.read_text()
    assert f"run job {run['id']} accepted from {hashed}" in log and "accepted from ci" in log
    assert "ci-secret-token" not in log and bare not in log
