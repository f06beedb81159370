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


NUL_PATHS = [
    "/runs/%00",
    "/runs/a%00b/logs",
    "/runs/%00/metrics",
    "/runs/%00/outputs",
    "/runs/%00/outputs/archive",
    "/data/%00",
    "/models/fetch/%00",
    "/models/%00/versions",
    "/models/m%00/versions/1/archive",
    "/ui/runs/%00",
    "/ui/models/%00",
]
NUL_QUERIES = [
    "/runs?q=%00",
    "/runs?experiment=a%00",
    "/runs?ids=x,%00",
    "/runs?data_version=%00",
    "/runs?sort=metrics.%00",
    "/runs/metrics?ids=%00",
    "/data?q=%00",
    "/models/fetch?cursor=%00",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_app(request: pytest.FixtureRequest, make_app):
    if request.param == "sqlite":
        return make_app()
    return make_app(db_url=request.getfixturevalue("postgres_url"))


def test_a_nul_in_a_path_query_or_field_is_a_404_or_422_on_both_stores(store_app) -> None:
    """PostgreSQL takes no NUL in text: each of these was a 500 there (issue 26, item 2)."""
    for path in NUL_PATHS:
        answer = store_app.get(path)
        assert answer.status_code == 404, (path, answer.status_code, answer.text[:200])
    assert store_app.post("/runs/%00/cancel").status_code == 404
    for path in NUL_QUERIES:
        answer = store_app.get(path)
        assert answer.status_code == 422, (path, answer.status_code, answer.text[:200])
        assert "NUL" in answer.json()["detail"]
    for route, body in [
        ("/runs", {"experiment": "a\x00"}),
        ("/runs", {"args": {"seed\x00": "1"}}),
        ("/models/fetch", {"model": "m\x00", "output_path": "x"}),
        ("/data", {"data_dir": "d\x00", "path": "p"}),
    ]:
        answer = store_app.post(route, json=body)
        assert answer.status_code == 422, (route, answer.text[:200])
        assert "NUL" in answer.json()["detail"], answer.text
    form = store_app.post(
        "/chatops/slack",
        content=b"text=runs%00&user_id=U1",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 422 and "NUL" in form.json()["detail"]
    assert store_app.get("/runs", params={"q": "run"}).status_code == 200  # and the rest still answers
