"""service/http/hosts.py: only known host names are answered (DNS rebinding), whatever the client address."""

from __future__ import annotations

REBOUND = {"Host": "attacker.example:8000", "Origin": "http://attacker.example:8000"}


def test_a_rebound_page_can_neither_start_nor_read_runs_when_no_tokens_are_set(make_app) -> None:
    client = make_app(api_tokens="", api_read_tokens="", token=None)
    started = client.post("/runs", json={}, headers=REBOUND)
    assert started.status_code == 400, started.text
    assert started.json()["error"] == "invalid_host"
    assert "AZML_ALLOWED_HOSTS" in started.json()["detail"]
    assert client.get("/runs", headers=REBOUND).status_code == 400
    assert client.get("/runs").status_code == 200  # Host 127.0.0.1:8000
    assert client.get("/runs", headers={"Host": "localhost:8000"}).status_code == 200
    assert client.get("/runs", headers={"Host": "[::1]:8000"}).status_code == 200


def test_allowed_hosts_name_the_rest(make_app) -> None:
    client = make_app(allowed_hosts="ml.example.com,*.corp.example", public_url="https://aml.example.org/")
    for host in ("ml.example.com", "a.corp.example", "aml.example.org:443", "localhost:8000"):
        assert client.get("/runs", headers={"Host": host}).status_code == 200, host
    for host in ("attacker.example", "corp.example.evil", "", "a b"):
        assert client.get("/runs", headers={"Host": host}).status_code == 400, host


def test_with_tokens_and_no_list_any_host_is_answered(make_app) -> None:
    client = make_app()
    assert client.get("/runs", headers={"Host": "aml.internal:8000"}).status_code == 200
