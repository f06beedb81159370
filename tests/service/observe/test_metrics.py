"""GET /metrics: Prometheus text from prometheus_client, by route template, readable with a read token."""

from __future__ import annotations

import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.service.conftest import FULL_TOKEN, READ_TOKEN, Service, upload


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_jobs_uploads_and_backend_calls(service: Service) -> None:
    with service.client() as client:
        upload(client, {"a.csv": b"1,2\n", "b.csv": b"3"})
        run = client.post("/runs", params={"wait": 60}, json={"estimators": 2}).json()
        for _ in range(3):
            client.get(f"/runs/{run['id']}")
        client.get("/runs/run_nope")
    with service.client(READ_TOKEN) as reader:
        answer = reader.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    found = samples(answer.text)
    requests = "aml_http_request_duration_seconds_count"
    assert value(found, requests, route="/runs/{run_id}", method="GET", status="200") == 3
    assert value(found, requests, route="/runs/{run_id}", method="GET", status="404") == 1
    assert run["id"] not in answer.text  # labels are route templates, never ids
    assert value(found, requests, route="/runs", method="POST", status="200") == 1
    assert value(found, "aml_jobs", kind="run", status="Completed") == 1
    assert value(found, "aml_jobs", kind="data", status="Completed") == 1
    assert value(found, "aml_runs", state="queued") == 0
    assert value(found, "aml_job_duration_seconds_count", kind="run", outcome="Completed") == 1
    assert value(found, "aml_upload_files_total") == 2 and value(found, "aml_upload_bytes_total") == 5
    assert value(found, "aml_backend_call_duration_seconds_count", operation="submit_run") == 1
    assert value(found, "aml_home_bytes") > 0
    assert not re.search(r"token|secret", answer.text, re.I)


def test_metrics_need_a_token_and_can_be_off(make_service) -> None:
    service = make_service()
    assert httpx.get(f"{service.url}/metrics").status_code == 401
    off = make_service(AZML_METRICS="false")
    with off.client() as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/healthz").status_code == 200


def test_unknown_methods_share_one_label(make_app) -> None:
    client = make_app()
    for index in range(50):
        client.request(f"X{index}", "/runs")
    text = client.get("/metrics").text
    assert 'method="other"' in text
    assert 'method="X1"' not in text


def test_refusals_carry_their_route_and_streams_stay_out_of_latencies(make_app) -> None:
    client = make_app(token=None)
    assert client.get("/runs/run_x").status_code == 401
    assert client.post("/runs", json={}, headers={"Authorization": "Bearer guess"}).status_code == 401
    with client.stream("GET", "/events", headers={"Authorization": f"Bearer {FULL_TOKEN}"}) as stream:
        assert stream.status_code == 200
    text = client.get("/metrics", headers={"Authorization": f"Bearer {FULL_TOKEN}"}).text
    found = samples(text)
    requests = "aml_http_request_duration_seconds_count"
    assert value(found, requests, route="/runs/{run_id}", method="GET", status="401") == 1
    assert value(found, requests, route="/runs", method="POST", status="401") == 1
    assert 'route="unmatched"' not in text
    assert 'route="/events"' not in text and value(found, "aml_event_streams_total") == 1


def test_every_known_outcome_starts_at_zero(make_app) -> None:
    found = samples(make_app().get("/metrics").text)
    assert ("aml_job_duration_seconds_count", (("kind", "run"), ("outcome", "Failed"))) in found
    assert ("aml_notifications_total", (("channel", "callback"), ("outcome", "failed"))) in found
    assert ("aml_backend_call_errors_total", (("operation", "submit_run"),)) in found
    assert ("aml_retention_removed_total", (("what", "job"),)) in found
