"""Log lines as an operator reads them: request ids on every response, one access line per request,
JSON lines with the job's context, and no token or secret anywhere."""

from __future__ import annotations

import json
import time

from tests.service.conftest import FULL_TOKEN, READ_TOKEN, Service, upload

CI_TOKEN = "ci-token-secret-value-123"


def json_lines(service: Service) -> list[dict]:
    lines = []
    for raw in service.log.read_text().splitlines():
        raw = raw.strip()
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def wait_for(predicate, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def test_every_response_carries_a_request_id_and_a_sane_caller_value_is_kept(service: Service) -> None:
    with service.client() as client:
        mine = client.get("/models", headers={"X-Request-ID": "pipeline-42.step:3"})
        assert mine.headers["x-request-id"] == "pipeline-42.step:3"
        fresh = client.get("/models")
        assert len(fresh.headers["x-request-id"]) == 32
        assert fresh.headers["x-request-id"] != client.get("/models").headers["x-request-id"]
        for hostile in (b"a" * 300, b"two words", "x\u00e9".encode(), b"-starts-with-dash", b"a\\nb"):
            answered = client.get("/models", headers={"X-Request-ID": hostile})
            assert answered.headers["x-request-id"].encode() != hostile
            assert len(answered.headers["x-request-id"]) == 32
        # refusals and errors too: auth, a 404, a 422, a 413 from the edge
        assert "x-request-id" in service.client(token=None).get("/runs").headers
        assert "x-request-id" in client.get("/runs/nope").headers
        assert "x-request-id" in client.post("/runs", json={"estimators": "many"}).headers
        assert "x-request-id" in client.post("/runs", content=b"{" * 70_000).headers
        assert "x-request-id" in client.get("/healthz").headers


def test_json_lines_carry_request_job_run_and_caller_and_no_secret(make_service) -> None:
    service = make_service(
        AZML_LOG_FORMAT="json",
        AZML_API_TOKENS=f"ci:{CI_TOKEN},{FULL_TOKEN}",
        AZML_WEBHOOK_SECRET="webhook-secret-value-456",
    )
    with service.client(token=CI_TOKEN) as client:
        assert upload(client, {"train.csv": b"a,b\n1,2\n"}).status_code in (200, 201, 202)
        accepted = client.post("/runs", json={}, headers={"X-Request-ID": "deploy-7"})
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["id"]
        wait_for(lambda: client.get(f"/runs/{job_id}").json()["status"] == "Completed")
        run_id = client.get(f"/runs/{job_id}").json()["backend_run_id"]
        client.get("/runs", params={"token": "leaked-query-token"})
    service.client(token=READ_TOKEN).get("/models")
    service.stop()

    lines = json_lines(service)
    assert lines, service.log.read_text()
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys()
    accepted_line = next(line for line in lines if line["message"].startswith(f"run job {job_id} accepted"))
    assert accepted_line["request_id"] == "deploy-7"
    assert accepted_line["job_id"] == job_id
    assert accepted_line["caller"] == "ci"
    # the worker's line about the job's end names the job, its run, who asked, and the request that asked
    ended = next(line for line in lines if line["message"].startswith(f"run job {job_id} completed"))
    context = (ended["job_id"], ended["run_id"], ended["caller"], ended["request_id"])
    assert context == (job_id, run_id, "ci", "deploy-7")
    access = [line for line in lines if line["logger"] == "service.access"]
    post_line = next(line for line in access if line.get("method") == "POST" and line.get("path") == "/runs")
    assert post_line["status"] == 202 and post_line["caller"] == "ci" and post_line["request_id"] == "deploy-7"
    assert isinstance(post_line["duration_ms"], float)
    assert any(line.get("caller", "").startswith("token-") for line in access)  # the read token, by its hash name
    assert sum(1 for line in access if line.get("path", "").startswith(f"/runs/{job_id}")) >= 1
    text = service.log.read_text()
    for secret in (CI_TOKEN, FULL_TOKEN, READ_TOKEN, "leaked-query-token", "webhook-secret-value-456"):
        assert secret not in text
    # uvicorn's own lines are JSON too; one access line per request (uvicorn's own is silenced)
    assert not [raw for raw in text.splitlines() if raw.strip() and not raw.strip().startswith("{")]
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]


def test_text_lines_name_the_context_and_access_log_can_be_turned_off(make_service) -> None:
    service = make_service(AZML_ACCESS_LOG="false")
    with service.client() as client:
        client.get("/models", headers={"X-Request-ID": "quiet-1"})
        upload(client, {"train.csv": b"a,b\n1,2\n"})
        accepted = client.post("/runs", json={}, headers={"X-Request-ID": "loud-2"})
        assert accepted.status_code == 202, accepted.text
    service.stop()
    text = service.log.read_text()
    assert "quiet-1" not in text and "GET /models" not in text  # neither our access line nor uvicorn's
    line = next(raw for raw in text.splitlines() if "run job run_" in raw and "accepted from" in raw)
    assert f"[request=loud-2 job={accepted.json()['id']} caller=token-" in line
    assert FULL_TOKEN not in text


def test_a_url_with_crlf_cannot_forge_an_access_line_even_unauthenticated(service: Service) -> None:
    with service.client(token=None) as client:
        forged = "/runs/x%0d%0aINFO:     service.access: GET /admin 200 0.1 ms [request=forged]"
        assert client.get(forged).status_code == 401
        assert client.get("/runs/y%1b%5b31mred%e2%80%a8z").status_code == 401
    wait_for(lambda: "x\\r\\nINFO" in service.log.read_text())
    lines = service.log.read_text().splitlines()
    assert not [line for line in lines if line.startswith("INFO:     service.access: GET /admin")]
    assert not [line for line in lines if "[request=forged]" in line and "\\r\\n" not in line]
    assert any("y\\x1b[31mred\\u2028z" in line for line in lines)


def test_a_message_with_a_newline_from_a_caller_stays_one_line() -> None:
    import logging

    from service.observe.logs import ContextFilter, TextFormatter

    record = logging.LogRecord(
        "service", logging.INFO, __file__, 1, "run job accepted from %s", ("slack:U1\nINFO: x",), None
    )
    ContextFilter().filter(record)
    assert TextFormatter().format(record) == "INFO:     service: run job accepted from slack:U1\\nINFO: x"


def test_secret_looking_query_values_and_encoded_bearers_are_masked() -> None:
    from service.observe.logs import redact

    text = redact("GET /x?pwd=p1&jwt=j1&session=s1&auth=Bearer%20b1 Authorization: bearer+b2")
    for secret in ("p1", "j1", "s1", "b1", "b2"):
        assert secret not in text, text
