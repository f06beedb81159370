"""service/http/uploads.py: the body reaches the unpacking thread whole, in whole blocks, without extra copies."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import tarfile
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from amllib.digest import tree_digest
from service.http import uploads
from service.http.unpack import BLOCK, Limits
from tests.service.conftest import (
    FULL_TOKEN,
    Service,
    tar_bytes,
    upload,
)

TAR = {"content-type": "application/x-tar"}


def test_the_pipe_hands_over_a_block_that_fits_as_is_and_splits_one_that_does_not() -> None:
    pipe = uploads._Pipe()
    first, second = os.urandom(BLOCK), os.urandom(1000)
    pipe._queue.put_nowait(first)
    pipe._queue.put_nowait(second)
    pipe._queue.put_nowait(None)
    assert pipe.read(BLOCK) is first  # no copy made while holding the GIL
    assert pipe.read(10) == second[:10] and pipe.read(BLOCK) == second[10:]
    assert pipe.read(BLOCK) == b"" and pipe.read(1) == b""


async def chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_the_body_is_regrouped_into_whole_blocks() -> None:
    body = os.urandom(3 * BLOCK + 123)

    async def regrouped() -> list[bytes]:
        return [block async for block in uploads._blocks(chunks(body, 65537), Limits(1 << 40, 10), 5.0)]

    blocks = asyncio.run(regrouped())
    assert [len(b) for b in blocks] == [BLOCK, BLOCK, BLOCK, 123] and b"".join(blocks) == body


def archive(kind: str, source: Path) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    if kind in ("tar", "tar.gz"):
        with tarfile.open(fileobj=buffer, mode="w:gz" if kind == "tar.gz" else "w") as tar:
            tar.add(source, arcname=".")
        return buffer.getvalue(), "application/gzip" if kind == "tar.gz" else "application/x-tar"
    if kind == "zip":
        with zipfile.ZipFile(buffer, "w") as zipped:
            for path in sorted(source.rglob("*")):
                if path.is_file():
                    zipped.write(path, path.relative_to(source).as_posix())
        return buffer.getvalue(), "application/zip"
    boundary = "b0undary"
    for path in sorted(source.rglob("*")):
        if path.is_file():
            rel = path.relative_to(source).as_posix()
            buffer.write(
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{rel}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n".encode()
            )
            buffer.write(path.read_bytes() + b"\r\n")
    buffer.write(f"--{boundary}--\r\n".encode())
    return buffer.getvalue(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("kind", ["tar", "tar.gz", "zip", "multipart"])
@pytest.mark.parametrize("chunk", [1, 7 * 1024, BLOCK + 1])
def test_every_form_arrives_whole_whatever_the_chunking(tmp_path: Path, kind: str, chunk: int) -> None:
    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    (source / "big.bin").write_bytes(os.urandom(2 * BLOCK + 17))
    (source / "sub" / "small.txt").write_text("hello")
    (source / "empty.txt").write_bytes(b"")
    body, content_type = archive(kind, source)
    if chunk == 1:
        chunk = max(1, len(body) // 300)  # many tiny chunks, not millions of one byte
    staging = tmp_path / "staging"
    staging.mkdir()
    summary = asyncio.run(
        uploads.receive(
            chunks(body, chunk),
            content_type=content_type,
            declared_length=str(len(body)),
            staging=staging,
            limits=Limits(1 << 30, 100),
            timeout=10.0,
        )
    )
    assert summary.digest == tree_digest(source).digest == tree_digest(staging).digest
    assert summary.files == 3


def test_size_and_file_limits_answer_413(make_service) -> None:
    service = make_service(AZML_MAX_UPLOAD_BYTES="20000", AZML_MAX_UPLOAD_FILES="3")
    with service.client() as client:
        big = upload(client, {"big.bin": b"x" * 30000})
        assert big.status_code == 413 and "AZML_MAX_UPLOAD_BYTES" in big.json()["detail"]
        many = upload(client, {f"f{i}.csv": b"1" for i in range(5)})
        assert many.status_code == 413 and "AZML_MAX_UPLOAD_FILES" in many.json()["detail"]
        gz_bomb = client.post(
            "/data",
            content=tar_bytes({"z.bin": b"\0" * 200_000}, gz=True),
            headers={"content-type": "application/gzip"},
        )
        assert gz_bomb.status_code == 413  # small on the wire, large unpacked
        assert upload(client, {"ok.csv": b"fine"}).status_code == 200


def stalled_upload(service: Service, path: str = "stalled") -> socket.socket:
    """A POST /data that promises a large tar, sends a few bytes of it, and holds the socket."""
    sock = socket.create_connection(("127.0.0.1", service.port))
    head = (
        f"POST /data?path={path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {FULL_TOKEN}\r\n"
        "Content-Type: application/x-tar\r\nContent-Length: 1000000000\r\n\r\n"
    )
    sock.sendall(head.encode() + tar_bytes({"a.csv": b"x" * 4096})[:700])
    return sock


def read_answer(sock: socket.socket, timeout: float = 15) -> str:
    """Everything the server sends before it closes the connection (or the time is up)."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return received.decode(errors="replace")


def staging_folders(service: Service) -> list[Path]:
    return list((Path(service.env["AZML_HOME"]) / "datastore" / ".versions").glob("*.partial"))


def test_stalled_uploads_cost_only_themselves_and_are_cut_off(make_service) -> None:
    # 1 job slot → a backend pool of 6 threads; 16 stalled bodies used to take every one of them.
    service = make_service(AZML_JOB_CONCURRENCY="1", AZML_BODY_TIMEOUT="4")
    with service.client() as client:
        upload(client, {"a.csv": b"1,2\n"})
        sockets = [stalled_upload(service) for _ in range(16)]
        try:
            time.sleep(0.5)
            started = time.monotonic()
            assert client.get("/models", timeout=5).status_code == 200
            files = {"files": ("m.csv", b"1,2\n", "text/csv")}
            assert client.post("/data", params={"path": "multi", "wait": 10}, files=files).status_code == 200
            run = client.post("/runs", params={"wait": 30}, json={"estimators": 2})
            assert run.status_code == 200 and run.json()["status"] == "Completed"
            assert time.monotonic() - started < 20
            for sock in sockets:
                answer = read_answer(sock)
                assert answer.startswith("HTTP/1.1 408") and "AZML_BODY_TIMEOUT" in answer
        finally:
            for sock in sockets:
                sock.close()
        deadline = time.time() + 5
        while staging_folders(service) and time.time() < deadline:
            time.sleep(0.1)
        assert staging_folders(service) == []
    assert "Traceback" not in service.log.read_text()


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


def test_a_tar_cut_short_is_refused_and_nothing_is_published(make_app) -> None:
    """Issue 26, item 7: a tar cut at a member boundary, or a tar.gz without its trailer, became a partial version."""
    import gzip

    client = make_app()
    whole = tar_bytes({"a.csv": b"1" * 1000, "b.csv": b"2" * 3000, "c.csv": b"3" * 10})
    gz = gzip.compress(whole)
    damaged = bytearray(gz)
    damaged[-8] ^= 1  # the CRC-32 in the trailer
    bodies = {
        "cut after a member": (whole[: 512 + 1024], "application/x-tar"),
        "no end-of-archive blocks": (whole[: 3 * 512 + 1024 + 3072 + 512], "application/x-tar"),
        "gzip without its trailer": (gz[:-8], "application/gzip"),
        "gzip cut in the middle": (gz[: len(gz) // 2], "application/gzip"),
        "gzip with a wrong checksum": (bytes(damaged), "application/gzip"),
    }
    for what, (body, media) in bodies.items():
        answer = client.post("/data", params={"path": "cut", "wait": 30}, content=body, headers={"content-type": media})
        assert answer.status_code == 422, (what, answer.status_code, answer.text)
        assert "tar archive" in answer.json()["detail"], what
    assert all(entry["path"] != "cut" for entry in client.get("/datastore").json()["paths"])
    good = client.post(
        "/data", params={"path": "cut", "wait": 30}, content=gz, headers={"content-type": "application/gzip"}
    )
    assert good.status_code == 200 and good.json()["files"] == 3, good.text


def test_uploads_past_the_cap_are_a_503_with_retry_after_and_leave_nothing(make_app, monkeypatch) -> None:
    """Issue 26, item 10: one thread per upload body with no cap (300 stalled uploads held 300 threads)."""
    client = make_app()
    monkeypatch.setattr(uploads, "_uploads", uploads.MAX_UPLOADS_AT_ONCE)  # that many are being received
    busy = client.post("/data", params={"path": "p"}, content=tar_bytes({"a.csv": b"1"}), headers=TAR)
    assert busy.status_code == 503 and busy.json()["error"] == "busy" and busy.headers["retry-after"]
    staging = Path(client.app.state.services.settings.home) / "datastore"
    assert not [p for p in staging.rglob("*") if "staging" in p.name and p.is_dir() and any(p.iterdir())]
    monkeypatch.setattr(uploads, "_uploads", uploads.MAX_UPLOADS_AT_ONCE - 1)
    assert (
        client.post(
            "/data", params={"path": "p", "wait": 30}, content=tar_bytes({"a.csv": b"1"}), headers=TAR
        ).status_code
        == 200
    )
    assert uploads._uploads == uploads.MAX_UPLOADS_AT_ONCE - 1  # its place was given back
