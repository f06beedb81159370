"""service/http/auth.py and service/http/throttle.py: credentials, sign-in, sessions, and the backoff for guessers."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from amllib.errors import ConfigError
from tests.service.conftest import (
    FULL_TOKEN,
    READ_TOKEN,
    Service,
)


def sign_in(client, token: str = FULL_TOKEN, **headers: str):
    return client.post("/ui/login", data={"token": token, "next": "/ui/"}, headers=headers, follow_redirects=False)


def cookie_of(answer) -> str:
    return answer.cookies["azml_session"]


def test_sign_out_revokes_the_session_on_the_server_and_across_restarts(make_app) -> None:
    client = make_app(token=None)
    cookie = cookie_of(sign_in(client))
    assert client.get("/runs", cookies={"azml_session": cookie}).status_code == 200
    assert client.get("/ui/logout", cookies={"azml_session": cookie}, follow_redirects=False).status_code == 303
    # The browser dropped it; a copy of the same cookie is refused from now on.
    assert client.get("/runs", cookies={"azml_session": cookie}).status_code == 401
    again = make_app(token=None)  # a new service on the same AZML_HOME
    assert again.get("/runs", cookies={"azml_session": cookie}).status_code == 401
    fresh = cookie_of(sign_in(again))
    assert again.get("/runs", cookies={"azml_session": fresh}).status_code == 200


def test_the_cookie_carries_a_keyed_fingerprint_not_a_hash_of_the_token(make_app) -> None:
    client = make_app(token=None)
    body = cookie_of(sign_in(client)).split(".")[0]
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert FULL_TOKEN not in json.dumps(payload)
    assert not hashlib.sha256(FULL_TOKEN.encode()).hexdigest().startswith(payload["fp"][:8])
    assert len(payload["sid"]) == 32


@pytest.mark.parametrize("content", ["", "00", "zz" * 40])
def test_a_short_or_damaged_session_key_is_refused_at_start(make_app, tmp_path, content: str) -> None:
    (tmp_path / "aml").mkdir(parents=True, exist_ok=True)
    (tmp_path / "aml" / ".ui-session-key").write_text(content)
    with pytest.raises(ConfigError, match="ui-session-key"):
        make_app()


def test_sign_in_from_another_sites_page_is_refused(make_app) -> None:
    client = make_app(token=None)
    answer = sign_in(client, Origin="https://evil.example")
    assert answer.status_code == 403 and "azml_session" not in answer.cookies


def test_wrong_tokens_are_throttled_and_counted(make_app) -> None:
    client = make_app(token=None)
    for _ in range(10):
        assert client.get("/runs", headers={"Authorization": "Bearer guess"}).status_code == 401
    assert client.get("/runs", headers={"Authorization": "Bearer guess"}).status_code == 401  # the 11th locks
    locked = client.get("/runs", headers={"Authorization": f"Bearer {FULL_TOKEN}"})
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
    assert locked.json()["error"] == "throttled"
    assert client.get("/healthz").status_code == 200  # no credentials: never throttled
    from fastapi.testclient import TestClient

    other = TestClient(client.app, base_url="http://127.0.0.1", client=("127.0.0.2", 1))  # not locked out
    metrics = other.get("/metrics", headers={"Authorization": f"Bearer {FULL_TOKEN}"}).text
    assert 'aml_auth_failures_total{kind="bearer"} 11.0' in metrics
    assert "aml_auth_throttled_total 1.0" in metrics


def test_wrong_sign_ins_are_throttled(make_app) -> None:
    client = make_app(token=None)
    for _ in range(11):
        assert sign_in(client, "guess").status_code == 401
    answer = sign_in(client, FULL_TOKEN)
    assert answer.status_code == 429 and "Too many failed sign-ins" in answer.text
    assert "azml_session" not in answer.cookies


def test_a_malformed_authorization_header_is_a_401_even_without_tokens(make_app) -> None:
    client = make_app(api_tokens="", api_read_tokens="", token=None)
    assert client.get("/runs").status_code == 200  # loopback, no tokens configured
    for header in ("Bearer ", "Bearer", "Basic abc", "bearer"):
        assert client.get("/runs", headers={"Authorization": header}).status_code == 401, header


def test_a_read_session_may_not_write(make_app) -> None:
    client = make_app(token=None)
    cookie = cookie_of(sign_in(client, READ_TOKEN))
    assert client.post("/runs", json={}, cookies={"azml_session": cookie}).status_code == 403


def test_every_answer_carries_the_security_headers(make_app) -> None:
    client = make_app()
    for path in ("/ui/", "/runs", "/healthz", "/docs", "/nope"):
        headers = client.get(path).headers
        assert headers["x-frame-options"] == "DENY", path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src 'self';" in client.get("/ui/").headers["content-security-policy"]


def test_the_api_docs_load_nothing_from_outside(make_app) -> None:
    client = make_app()
    page = client.get("/docs")
    assert page.status_code == 200
    assert "http" not in page.text.replace("http-equiv", "")  # every asset is the service's own
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/ui/static/docs.js").status_code == 200
    assert client.get("/redoc").status_code == 404


def test_no_tokens_means_loopback_only(tmp_path: Path) -> None:
    import asyncio

    from amllib.settings import Settings
    from service.http.auth import BearerAuth
    from service.http.session import SessionSigner

    sent: list[dict] = []

    async def app(scope: dict, receive: object, send: object) -> None:
        sent.append({"status": 200})

    async def send(message: dict) -> None:
        sent.append(message)

    auth = BearerAuth(app, Settings(_env_file=None), SessionSigner(tmp_path, full={}, read={}))
    for host, status in (("127.0.0.1", 200), ("::1", 200), ("10.1.2.3", 403), ("203.0.113.9", 403)):
        sent.clear()
        scope = {"type": "http", "path": "/runs", "method": "GET", "headers": [], "client": (host, 5000)}
        asyncio.run(auth(scope, None, send))
        assert sent[0]["status"] == status, host


def test_tokens(service: Service) -> None:
    with service.client(token=None) as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok", "backend": "local", "event_streams": 0}
        response = anonymous.get("/runs")
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    with service.client(token="wrong") as wrong:
        assert wrong.get("/runs").status_code == 401
        assert wrong.post("/runs", json={}).status_code == 401
    with service.client(token=READ_TOKEN) as reader:
        assert reader.get("/runs").status_code == 200
        refused = reader.post("/runs", json={})
        assert refused.status_code == 403 and "read" in refused.json()["detail"]
        assert reader.post("/models/fetch", json={}).status_code == 403
    assert READ_TOKEN not in service.log.read_text()


def test_head_and_a_token_in_the_query_string(service: Service) -> None:
    with service.client() as client:
        head = client.head("/runs")
        assert head.status_code == 200 and head.content == b""
        assert client.head("/runs/nope").status_code == 404
        client.get("/runs", params={"token": "query-secret-value", "access_key": "another-secret"})
    service.stop()
    log = service.log.read_text()
    assert "query-secret-value" not in log and "another-secret" not in log
    assert "token=[redacted]" in log


def test_a_lockout_earned_on_one_replica_is_honoured_by_another(tmp_path, monkeypatch) -> None:
    """Failures count in the job store: a guesser can't multiply its tries by the replicas behind a load balancer."""
    import asyncio

    from service.core.store_sqlite import SqliteStore
    from service.http import throttle as throttling

    monkeypatch.setattr(throttling, "REFRESH", 0.0)
    stores = [SqliteStore(tmp_path / "jobs.sqlite"), SqliteStore(tmp_path / "jobs.sqlite")]
    replicas = [throttling.Throttle(), throttling.Throttle()]
    for replica, store in zip(replicas, stores, strict=True):
        replica.attach(store)

    async def guess() -> None:
        for index in range(throttling.FREE_FAILURES + 1):
            replicas[index % 2].failed("10.1.1.1")  # no replica alone sees more than the free failures
            await asyncio.gather(*replicas[index % 2]._writes)

    try:
        asyncio.run(guess())
        assert replicas[0].wait("10.1.1.1") > 0 and replicas[1].wait("10.1.1.1") > 0
        assert replicas[1].wait("10.1.1.2") == 0
    finally:
        for store in stores:
            store.close()


def guess_until_locked(client, **headers: str) -> None:
    for _ in range(11):
        assert client.get("/runs", headers={"Authorization": "Bearer guess", **headers}).status_code == 401


def test_a_token_that_worked_from_an_address_goes_on_while_a_guesser_there_is_locked_out(make_app) -> None:
    """Issue 26, item 5: users behind one NAT address with a guesser among them keep working."""
    client = make_app(token=None, client_host="10.0.0.5")
    full = {"Authorization": f"Bearer {FULL_TOKEN}"}
    assert client.get("/runs", headers=full).status_code == 200  # a pipeline behind the NAT, before
    guess_until_locked(client)
    assert client.get("/runs", headers={"Authorization": "Bearer another-guess"}).status_code == 429
    assert client.get("/runs", headers=full).status_code == 200  # proven from this address: goes on
    assert client.get("/runs", headers={"Authorization": f"bearer  {FULL_TOKEN}"}).status_code == 200
    unproven = client.get("/runs", headers={"Authorization": f"Bearer {READ_TOKEN}"})
    assert unproven.status_code == 429  # never used from here: not looked at, so a right guess learns nothing
    assert sign_in(client, READ_TOKEN).status_code == 429
    assert sign_in(client, FULL_TOKEN).status_code == 303  # the proven token signs in too


def test_x_forwarded_for_is_believed_only_from_the_proxies_named(make_app) -> None:
    """Issue 26, item 5: any client could name any address, dodge the throttle and lock a victim out."""
    from fastapi.testclient import TestClient

    guesser = make_app(token=None, client_host="10.0.0.5")
    for index in range(11):
        wrong = {"Authorization": "Bearer guess", "X-Forwarded-For": f"198.51.100.{index}"}
        assert guesser.get("/runs", headers=wrong).status_code == 401
    named = {"Authorization": "Bearer guess", "X-Forwarded-For": "10.0.0.9"}
    assert guesser.get("/runs", headers=named).status_code == 429  # throttled by its own address
    victim = TestClient(guesser.app, base_url="http://127.0.0.1", client=("10.0.0.9", 1))
    assert victim.get("/runs", headers={"Authorization": f"Bearer {FULL_TOKEN}"}).status_code == 200

    proxied = make_app(token=None, client_host="10.0.0.1", trusted_proxies="10.0.0.1, 192.168.0.0/16")
    guess_until_locked(proxied, **{"X-Forwarded-For": "203.0.113.7"})
    locked = {"Authorization": f"Bearer {FULL_TOKEN}", "X-Forwarded-For": "203.0.113.7"}
    assert proxied.get("/runs", headers=locked).status_code == 429  # the client the proxy named is locked out
    other = {"Authorization": f"Bearer {FULL_TOKEN}", "X-Forwarded-For": "203.0.113.8"}
    assert proxied.get("/runs", headers=other).status_code == 200  # another client behind the same proxy is not
    spoofed = {"Authorization": f"Bearer {FULL_TOKEN}", "X-Forwarded-For": "203.0.113.8, 203.0.113.7"}
    assert proxied.get("/runs", headers=spoofed).status_code == 429  # the proxy appended .7: that is the client


@pytest.mark.parametrize("value", ["*", "proxy.example.com", "10.0.0.0/33"])
def test_trusted_proxies_are_addresses_or_networks(value: str, tmp_path: Path) -> None:
    from amllib.settings import Settings
    from service.app import create_app

    with pytest.raises(ConfigError, match="AZML_TRUSTED_PROXIES"):
        create_app(Settings(_env_file=None, home=tmp_path, trusted_proxies=value))


def test_the_service_as_started_believes_no_forwarded_header_from_loopback(service: Service) -> None:
    """start.sh, the image and the tests start uvicorn with --no-proxy-headers; without it the log says why not."""
    with service.client(token=None) as client:
        for index in range(11):
            wrong = {"Authorization": "Bearer guess", "X-Forwarded-For": f"198.51.100.{index}"}
            assert client.get("/runs", headers=wrong).status_code == 401
        assert client.get("/runs", headers={"Authorization": "Bearer guess"}).status_code == 429
    assert (
        "--no-proxy-headers" in Path("start.sh").read_text() and "--no-proxy-headers" in Path("Dockerfile").read_text()
    )
    assert "started without --no-proxy-headers" not in service.log.read_text()


def test_uvicorn_started_without_no_proxy_headers_is_warned_about() -> None:
    import logging

    from service.app import warn_if_uvicorn_trusts_forwarded_headers

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("service")
    logger.addHandler(handler)
    try:
        warn_if_uvicorn_trusts_forwarded_headers(["/venv/bin/uvicorn", "service.app:app"])
        warn_if_uvicorn_trusts_forwarded_headers(["/venv/bin/uvicorn", "service.app:app", "--no-proxy-headers"])
        warn_if_uvicorn_trusts_forwarded_headers(["/x/pytest"])
    finally:
        logger.removeHandler(handler)
    assert len(records) == 1 and "--no-proxy-headers" in records[0].getMessage()
