"""The edge of the service (service/http/middleware.py): request bodies bounded, checked and replayed."""

from __future__ import annotations

import pytest

NOT_UTF8 = bytes.fromhex("ff161d02fe")


@pytest.mark.parametrize("route", ["/data", "/runs", "/models/fetch"])
def test_a_json_body_that_is_not_utf8_is_a_422_on_every_json_route(make_app, route: str) -> None:
    client = make_app()
    answer = client.post(route, content=NOT_UTF8, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "invalid"
    assert "UTF-8" in answer.json()["detail"]


def test_a_json_body_nested_too_deep_is_a_422(make_app) -> None:
    client = make_app()
    answer = client.post("/runs", content=b"[" * 40 + b"]" * 40, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert "nested deeper" in answer.json()["detail"]


def test_cors_lets_the_dashboard_in(make_service) -> None:
    service = make_service(AZML_CORS_ORIGINS="https://dash.example.com")
    with service.client(token=None) as client:
        preflight = client.options(
            "/runs",
            headers={
                "Origin": "https://dash.example.com",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://dash.example.com"
        other = client.options(
            "/runs", headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"}
        )
        assert "access-control-allow-origin" not in other.headers
