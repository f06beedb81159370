"""service/core/delivery.py: one retrying poster for callbacks and chat notices, on httpx.MockTransport."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from pathlib import Path

import httpx
import pytest

from service.chatops.notices import post_notice
from service.core import delivery
from service.core.delivery import deliver, signature
from tests.conftest import make_settings
from tests.service.conftest import Listener, Service, tar_bytes, upload


class Receiver:
    """Answers with the given statuses in turn (the last one for ever) and keeps what it got."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return httpx.Response(status, headers={"location": "http://elsewhere.test/"} if status == 302 else {})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The back-off waits asked for, without waiting them."""
    asked: list[float] = []

    async def no_wait(seconds: float) -> None:
        asked.append(seconds)

    monkeypatch.setattr(delivery.asyncio, "sleep", no_wait)
    return asked


def test_a_callback_is_signed_and_retried_until_it_lands(waits: list[float]) -> None:
    receiver = Receiver(500, 503, 200)
    body = b'{"id": "run_1"}'
    outcome = asyncio.run(
        deliver("http://ci.test/hook", body, job_id="run_1", secret="s3cret", transport=receiver.transport())
    )
    assert outcome == "delivered (HTTP 200, attempt 3)"
    assert len(receiver.requests) == 3 and waits == [0.5, 1.0]
    sent = receiver.requests[-1]
    assert sent.headers["x-signature"] == signature("s3cret", body) and sent.headers["x-job-id"] == "run_1"
    assert sent.content == body


def test_a_redirect_is_not_followed_and_the_last_try_is_not_waited_after(waits: list[float]) -> None:
    receiver = Receiver(302)
    outcome = asyncio.run(
        deliver("http://ci.test/hook", b"{}", job_id="j", secret=None, transport=receiver.transport())
    )
    assert outcome == f"failed after {delivery.ATTEMPTS} attempts: HTTP 302"
    assert all(r.url.host == "ci.test" for r in receiver.requests)  # never to the redirect's target
    assert len(waits) == delivery.ATTEMPTS - 1


def test_a_chat_notice_goes_through_the_same_poster(tmp_path: Path, waits: list[float]) -> None:
    """Notices used to wait again after their last failed try; now they share the callbacks' poster."""
    settings = make_settings(tmp_path / "aml")
    receiver = Receiver(500, 200)
    notify = {"platform": "slack", "at": time.time(), "response_url": "https://hooks.slack.com/commands/T/1"}
    outcome = asyncio.run(post_notice(settings, notify, {"text": "done"}, transport=receiver.transport()))
    assert outcome == "delivered (HTTP 200, attempt 2)" and waits == [0.5]
    assert json.loads(receiver.requests[-1].content) == {"text": "done"}
    failing = Receiver(500)
    outcome = asyncio.run(post_notice(settings, notify, {"text": "done"}, transport=failing.transport()))
    assert outcome == "failed: HTTP 500" and len(failing.requests) == 3 and waits == [0.5, 0.5, 1.0]


def test_a_notice_to_a_host_not_allowed_is_never_sent(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "aml")
    receiver = Receiver(200)
    notify = {"platform": "slack", "at": time.time(), "response_url": "https://169.254.169.254/latest"}
    outcome = asyncio.run(post_notice(settings, notify, {"text": "x"}, transport=receiver.transport()))
    assert outcome.startswith("refused") and receiver.requests == []


def test_callbacks_are_signed_retried_and_recorded(make_service) -> None:
    listener = Listener(failures=1)
    secret = "webhook-secret-for-tests"
    service = make_service(AZML_CALLBACK_HOSTS=f"127.0.0.1:{listener.port}", AZML_WEBHOOK_SECRET=secret)
    try:
        with service.client() as client:
            upload(client, {"a.csv": b"1"})
            url = f"http://127.0.0.1:{listener.port}/hook"
            job = client.post("/runs", json={"callback_url": url}).json()
            listener.wait(1)
            assert len(listener.received) == 1
            headers, body = listener.received[0]
            expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers["x-signature"], expected)
            sent = json.loads(body)
            assert sent["id"] == job["id"] and sent["status"] == "Completed"
            assert sent["model_version"]["version"] == 1
            deadline = time.time() + 10
            while not client.get(f"/runs/{job['id']}").json()["callback_status"] and time.time() < deadline:
                time.sleep(0.1)
            assert (
                client.get(f"/runs/{job['id']}").json()["callback_status"].startswith("delivered (HTTP 204, attempt 2")
            )
            other_port = client.post("/runs", json={"callback_url": f"http://127.0.0.1:{listener.port + 1}/"})
            assert other_port.status_code == 422
            data = client.post(
                "/data",
                params={"path": "cb", "callback_url": url},
                content=tar_bytes({"a": b"1"}),
                headers={"content-type": "application/x-tar"},
            ).json()
            listener.wait(2)
            assert json.loads(listener.received[1][1])["id"] == data["id"]
            refused = client.post(
                "/data",
                params={"callback_url": "http://10.0.0.1/"},
                content=b"x",
                headers={"content-type": "application/x-tar"},
            )
            assert refused.status_code == 422 and "callback_url" in refused.json()["detail"]
    finally:
        listener.close()
    assert secret not in service.log.read_text()


def test_callback_hosts_are_checked(service: Service) -> None:
    with service.client() as client:
        for url in ("http://169.254.169.254/latest", "file:///etc/passwd", "http://user:pw@127.0.0.1/"):
            response = client.post("/runs", json={"callback_url": url})
            assert response.status_code == 422 and "callback_url" in response.json()["detail"]
