"""service/errors.py: every refusal names what was wrong, with the right status, never a 500 for a caller's mistake."""

from __future__ import annotations

import json
from pathlib import Path

from tests.service.conftest import LONG_NAME, Service, assert_refused, tar_bytes, upload


def test_bad_requests_name_what_was_wrong(service: Service) -> None:
    with service.client() as client:
        upload(client, {"a.csv": b"1"})
        cases = [
            (client.post("/runs", json={"script": "../fail.py"}), 400, "script"),
            (client.post("/runs", json={"script": "nope.py"}), 422, "nope.py"),
            (client.post("/runs", json={"estimators": 0}), 422, "estimators"),
            (client.post("/runs", json={"datapath": "../../etc"}), 400, "datapath"),
            (client.post("/runs", json={"args": {"bad name": 1}}), 422, "args key"),
            (client.post("/runs", json={"surprise": 1}), 422, "surprise"),
            (client.post("/runs", content=b"{not json", headers={"content-type": "application/json"}), 422, ""),
            (client.post("/models/fetch", json={"version": 1, "use_best": True}), 422, "use_best"),
            (client.post("/models/fetch", json={"output_path": "../../etc"}), 400, "output_path"),
            (client.post("/models/fetch", json={"output_path": "/abs"}), 400, "output_path"),
            (
                client.post(
                    "/data", params={"path": "../x"}, content=b"x", headers={"content-type": "application/x-tar"}
                ),
                400,
                "path",
            ),
            (client.post("/data", content=b"x", headers={"content-type": "text/plain"}), 415, "content type"),
            (client.post("/data", content=b"garbage", headers={"content-type": "application/x-tar"}), 422, "tar"),
            (client.get("/runs/run_missing"), 404, "run_missing"),
            (client.get("/data/nope"), 404, "nope"),
            (client.get("/models/fetch/nope"), 404, "nope"),
            (client.get("/models/none/versions"), 404, "none"),
            (client.get("/models/none/versions/1/archive"), 404, "none"),
            (client.get("/runs", params={"cursor": "zzz"}), 422, "cursor"),
        ]
        for response, status, words in cases:
            assert response.status_code == status, (response.request.url, response.text)
            body = response.json()
            assert words in body["detail"] or words in str(body.get("fields")), body
            assert "Traceback" not in response.text


def test_fields_and_json_bodies_are_bounded(service: Service) -> None:
    with service.client() as client:
        upload(client, {"a.csv": b"1"})
        huge = "x" * 300_000
        assert_refused(client.post("/models/fetch", json={"output_path": "a" * 5000}), 422, "output_path")
        assert_refused(client.post("/runs", json={"args": {"flavour": "v" * 5000}}), 422, "args")
        assert_refused(client.post("/runs", json={"args": {"k" * 60_000: 1}}), 422, "args")
        assert_refused(client.post("/runs", json={"estimators": 10**9}), 422, "estimators")
        assert_refused(client.post("/runs", json={"experiment": "e" * 300}), 422, "experiment")
        assert_refused(client.post("/runs", json={"callback_url": "http://" + "h" * 3000}), 422, "callback_url")
        assert_refused(client.post("/runs", json={"model": huge}), 413, "limited")
        assert_refused(
            client.post("/data", content=json.dumps({"data_dir": huge}), headers={"content-type": "application/json"}),
            413,
            "limited",
        )

        def chunked() -> object:
            yield b'{"model": "'
            for _ in range(100):
                yield b"m" * 4096
            yield b'"}'

        assert_refused(
            client.post("/runs", content=chunked(), headers={"content-type": "application/json"}), 413, "limited"
        )
        wrong_type = client.post("/data", content=b"x" * 200_000, headers={"content-type": "text/plain"})
        assert_refused(wrong_type, 415, "content type")
        assert client.get("/runs").json()["items"] == []  # nothing was accepted


def test_what_used_to_answer_500_now_names_the_field(service: Service, tmp_path: Path) -> None:
    with service.client() as client:
        upload(client, {"a.csv": b"1"})
        tar = client.post(
            "/data", content=tar_bytes({f"{LONG_NAME}.csv": b"1"}), headers={"content-type": "application/x-tar"}
        )
        assert_refused(tar, 422, "upload entry")
        deep = tar_bytes({"/".join(["p" * 200] * 25) + "/x.csv": b"1"})
        assert_refused(
            client.post("/data", content=deep, headers={"content-type": "application/x-tar"}), 422, "upload entry"
        )
        multipart = client.post("/data", files={"files": (f"{LONG_NAME}.csv", b"1", "text/csv")})
        assert_refused(multipart, 422, "upload entry")
        assert_refused(client.post("/data", params={"path": LONG_NAME}, files={"files": ("a", b"1")}), 422, "path")
        assert_refused(client.post("/data", json={"data_dir": LONG_NAME}), 422, "data_dir")
        assert_refused(client.post("/runs", json={"datapath": LONG_NAME}), 422, "datapath")
        assert_refused(client.post("/runs", json={"script": LONG_NAME + ".py"}), 422, "script")
        assert_refused(client.post("/models/fetch", json={"output_path": LONG_NAME}), 422, "output_path")
        nested = "[" * 1000 + "]" * 1000
        for route in ("/runs", "/models/fetch", "/data"):
            response = client.post(route, content=nested, headers={"content-type": "application/json"})
            assert_refused(response, 422, "nested")
        for cursor in ("²", "99999999999999999999999", "-1"):
            assert_refused(client.get("/runs", params={"cursor": cursor}), 422, "cursor")
            assert_refused(client.get("/data", params={"cursor": cursor}), 422, "cursor")
        assert client.get("/healthz").status_code == 200  # the kept-alive connection still works


def test_a_405_names_every_method_the_path_takes(make_app) -> None:
    """Issue 26, item 10: DELETE /runs said Allow: POST, though GET /runs is a route too."""
    client = make_app()
    for method, path, allowed in [
        ("DELETE", "/runs", "GET, HEAD, POST"),
        ("PUT", "/data", "GET, HEAD, POST"),
        ("DELETE", "/runs/run_1", "GET, HEAD, PATCH"),
        ("GET", "/runs/run_1/cancel", "POST"),
    ]:
        answer = client.request(method, path)
        assert answer.status_code == 405 and answer.headers["allow"] == allowed, (method, path, answer.headers)
        assert answer.json()["error"] == "method_not_allowed"
