"""AZML_NOTIFY: registry events reach each subscription once, retried, recorded and signed, on both stores;
a send cut short by a killed replica is never sent again, and two readers at once send each happening once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time

import pytest
from fastapi.testclient import TestClient

from service.background.notifier import Notifier
from service.core.stores import open_store
from service.core.subscriptions import subscriptions
from tests.conftest import make_settings
from tests.service.conftest import Listener, tar_bytes

TAR = {"Content-Type": "application/x-tar"}
ALICE, BOB = "alice-token", "bob-token"
SECRET = "hook-secret-for-tests"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> dict:
    return {} if request.param == "sqlite" else {"db_url": request.getfixturevalue("postgres_url")}


@pytest.fixture
def listeners():
    made: list[Listener] = []

    def make(failures: int = 0) -> Listener:
        made.append(Listener(failures=failures))
        return made[-1]

    yield make
    for listener in made:
        listener.close()


def wait_for_deliveries(client: TestClient, count: int, timeout: float = 40) -> list[dict]:
    deadline = time.time() + timeout
    while True:
        found = client.get("/notifications", params={"limit": 1000}).json()["deliveries"]
        if sum(d["status"] in ("delivered", "failed") for d in found) >= count or time.time() > deadline:
            return found
        time.sleep(0.2)


def test_a_promotion_story_reaches_each_subscription_once(make_app, store: dict, listeners) -> None:
    chat, hook, elsewhere = listeners(), listeners(failures=1), listeners()
    subs = [
        {"name": "ops-slack", "to": "slack", "url": f"http://127.0.0.1:{chat.port}/services/T0/B0/xyz"},
        {
            "name": "audit",
            "to": "webhook",
            "url": f"http://127.0.0.1:{hook.port}/in",
            "events": ["alias.changed", "approval.decided"],
            "secret": SECRET,
        },
        {"name": "other-team", "to": "teams", "url": f"http://127.0.0.1:{elsewhere.port}/", "models": ["other"]},
    ]
    alice = make_app(
        token=ALICE,
        api_tokens=f"alice:{ALICE},bob:{BOB}",
        notify=json.dumps(subs),
        protected_aliases="production",
        **store,
    )
    bob = TestClient(alice.app, base_url="http://127.0.0.1:8000", headers={"Authorization": f"Bearer {BOB}"})
    assert alice.post("/data", params={"wait": 30}, content=tar_bytes({"a.csv": b"1"}), headers=TAR).status_code == 200
    for _ in range(2):
        assert alice.post("/runs", params={"wait": 60}, json={}).json()["status"] == "Completed"
    assert alice.put("/models/svc-model/aliases/staging", json={"version": 1, "reason": "first"}).status_code == 200
    asked = alice.put("/models/svc-model/aliases/production", json={"version": 2})
    assert asked.status_code == 202, asked.text
    assert bob.post(f"/approvals/{asked.json()['approval']['id']}/approve").status_code == 200
    failed = alice.post("/runs", params={"wait": 60}, json={"script": "fail.py"}).json()["job"]
    assert failed["status"] == "Failed", failed

    # 2 registered, 2 alias moves, asked, decided, 1 failed run to the chat; 2 moves and the decision to the hook
    deliveries = wait_for_deliveries(alice, 10)
    time.sleep(2.5)  # another pass of the notifier: nothing is told twice
    deliveries = alice.get("/notifications", params={"limit": 1000}).json()["deliveries"]
    assert sorted((d["subscription"], d["event"]) for d in deliveries) == sorted(
        [("ops-slack", e) for e in ("model.registered",) * 2 + ("alias.changed",) * 2]
        + [("ops-slack", e) for e in ("approval.requested", "approval.decided", "run.failed")]
        + [("audit", "alias.changed"), ("audit", "alias.changed"), ("audit", "approval.decided")]
    ), deliveries
    assert all(d["status"] == "delivered" for d in deliveries), deliveries
    assert any("attempt 2" in d["outcome"] for d in deliveries if d["subscription"] == "audit")

    texts = [json.loads(body)["text"] for _, body in chat.received]
    assert len(texts) == 7, texts
    assert any(t.startswith("svc-model: production now version 2") for t in texts), texts
    assert any(t.startswith(f"Run {failed['id']} failed") for t in texts), texts
    asked_text = next(t for t in texts if t.startswith("Approval asked"))
    assert "approve appr_" in asked_text and "Asked by alice" in asked_text

    assert len(hook.received) == 3 and elsewhere.received == []
    for headers, body in hook.received:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-signature"], expected)
        assert headers["x-event"] == json.loads(body)["event"]
    assert len({headers["x-delivery"] for headers, _ in hook.received}) == 3

    shown = alice.get("/notifications")
    assert [s["name"] for s in shown.json()["subscriptions"]] == ["ops-slack", "audit", "other-team"]
    assert str(chat.port) not in shown.text and SECRET not in shown.text  # never a URL or a secret


def test_a_cut_short_send_is_never_repeated_and_two_readers_send_once(tmp_path, store: dict, listeners) -> None:
    hook = listeners()
    settings = make_settings(
        tmp_path,
        notify=json.dumps([{"name": "hook", "to": "webhook", "url": f"http://127.0.0.1:{hook.port}/"}]),
        **store,
    )
    job_store = open_store(settings)
    subs = subscriptions(settings)
    first, second = (Notifier(settings=settings, store=job_store, subscriptions=subs, base_delay=0.01) for _ in "12")

    def moved(version: int) -> dict:
        return {"event": "alias.changed", "model": "m", "alias": "production", "version": version, "by": "alice"}

    async def story() -> None:
        await job_store.write(lambda tx: tx.append_event(topic="alias", job_id=None, data=moved(1)))
        await first.begin()  # what happened before the first start is not told
        seqs = []
        for version in range(2, 22):
            seqs.append(
                await job_store.write(lambda tx, v=version: tx.append_event(topic="alias", job_id=None, data=moved(v)))
            )
        # a replica died after recording the send of the last one, before posting it
        last = seqs[-1]
        await job_store.write(
            lambda tx: tx.claim_notification(f"alias.changed:{last}", "hook", event="alias.changed", seq=last)
        )
        await asyncio.gather(first.once(), second.once())  # e.g. a leader that lost its lease, still sending
        await first.once()
        await job_store.write(lambda tx: tx.settle_notifications(sending_before=tx.now() + 1, forget_before=0))

    try:
        asyncio.run(story())
        versions = sorted(json.loads(body)["data"]["version"] for _, body in hook.received)
        assert versions == list(range(2, 21))  # each once; not v1 (before), not v21 (cut short)
        rows = job_store.notifications(limit=100)
        assert len(rows) == 20
        by_seq = {r["seq"]: r["status"] for r in rows}
        assert by_seq.pop(max(by_seq)) == "unknown"
        assert set(by_seq.values()) == {"delivered"}
    finally:
        job_store.close()
