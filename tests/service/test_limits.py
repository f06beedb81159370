"""Issue 7, items 5-9: bounded bodies and fields, counted uploads, 4xx instead of 500, no server paths."""

from __future__ import annotations

import io
import json
import socket
import tarfile
import time
from pathlib import Path

import httpx

from tests.service.conftest import FULL_TOKEN, Service, tar_bytes, upload
from tests.service.test_stalls_and_races import read_answer

LONG_NAME = "n" * 300  # over the 255 bytes a file name may have


def tar_of_folders(count: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for index in range(count):
            folder = tarfile.TarInfo(f"d{index}")
            folder.type = tarfile.DIRTYPE
            tar.addfile(folder)
        info = tarfile.TarInfo("one.csv")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"1"))
    return buffer.getvalue()


def assert_refused(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, (response.request.url, response.status_code, response.text[:300])
    body = response.json()
    assert words in body["detail"] or words in str(body.get("fields")), body
    assert len(response.content) < 2000, "an error echoes at most a short excerpt"


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


def test_a_json_body_that_stalls_is_cut_off(make_service) -> None:
    service = make_service(AZML_BODY_TIMEOUT="2")
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        sock.sendall(
            f"POST /runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {FULL_TOKEN}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode()
        )
        assert read_answer(sock, timeout=10).startswith("HTTP/1.1 408")


def test_chunked_multipart_is_counted_while_it_arrives_and_spooled_nowhere_else(make_service, tmp_path: Path) -> None:
    spool = tmp_path / "system-tmp"
    spool.mkdir()
    service = make_service(AZML_MAX_UPLOAD_BYTES=str(1 << 20), TMPDIR=str(spool))
    boundary = "b0undary"
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=files; filename=big.bin\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        sock.sendall(
            f"POST /data?path=big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {FULL_TOKEN}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        for block in [head] + [b"x" * (256 << 10)] * 8:  # 2 MiB of a 1 MiB limit, then the client stalls
            sock.sendall(f"{len(block):x}\r\n".encode() + block + b"\r\n")
        answer = read_answer(sock, timeout=10)
        assert answer.startswith("HTTP/1.1 413") and "AZML_MAX_UPLOAD_BYTES" in answer
        assert list(spool.iterdir()) == []
    time.sleep(0.5)
    assert list((Path(service.env["AZML_HOME"]) / "datastore" / ".versions").glob("*.partial*")) == []


def test_folders_count_toward_the_entry_limit(make_service) -> None:
    service = make_service(AZML_MAX_UPLOAD_FILES="20")
    with service.client() as client:
        response = client.post("/data", content=tar_of_folders(50), headers={"content-type": "application/gzip"})
        assert_refused(response, 413, "AZML_MAX_UPLOAD_FILES")
        deep = upload(client, {"/".join(f"d{i}" for i in range(25)) + "/x.csv": b"1"})
        assert_refused(deep, 413, "AZML_MAX_UPLOAD_FILES")  # implied folders count too
        assert upload(client, {"a/b/c.csv": b"1"}).status_code == 200


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


def test_job_errors_carry_no_server_paths(service: Service, tmp_path: Path) -> None:
    server_data = Path(service.env["AZML_DATA_ROOT"])
    (server_data / "empty").mkdir(parents=True)
    outputs = Path(service.env["AZML_OUTPUT_ROOT"])
    outputs.mkdir(parents=True)
    (outputs / "afile").write_text("not a folder")
    with service.client() as client:
        empty = client.post("/data", params={"wait": 30}, json={"data_dir": "empty"})
        assert empty.status_code == 422
        assert "holds no files" in empty.json()["detail"]
        assert str(tmp_path) not in empty.text and "$AZML_DATA_ROOT/empty" in empty.json()["detail"]
        into_file = client.post("/models/fetch", json={"output_path": "afile/inner"})
        assert_refused(into_file, 422, "lies inside a file")
        assert str(tmp_path) not in into_file.text


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


def test_a_client_that_disconnects_mid_upload_is_no_error(service: Service) -> None:
    sock = socket.create_connection(("127.0.0.1", service.port))
    sock.sendall(
        f"POST /data?path=gone HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {FULL_TOKEN}\r\n"
        "Content-Type: application/x-tar\r\nContent-Length: 100000\r\n\r\n".encode()
        + tar_bytes({"a.csv": b"x" * 5000})[:3000]
    )
    time.sleep(0.3)
    sock.close()
    time.sleep(1)
    assert "Traceback" not in service.log.read_text()
    assert list((Path(service.env["AZML_HOME"]) / "datastore" / ".versions").glob("*.partial*")) == []
