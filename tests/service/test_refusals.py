"""Bad input gets a clear error, the right status, and nothing written."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import READ_TOKEN, Service, tar_bytes, upload


def tar_with(member: tarfile.TarInfo, content: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        ok = tarfile.TarInfo("fine.csv")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        member.size = len(content) if member.isreg() else 0
        tar.addfile(member, io.BytesIO(content) if content else None)
    return buffer.getvalue()


def symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    return info


@pytest.mark.parametrize(
    "archive",
    [
        tar_with(tarfile.TarInfo("../escape.csv"), b"x"),
        tar_with(tarfile.TarInfo("/etc/cron.d/evil"), b"x"),
        tar_with(tarfile.TarInfo("a/../../escape.csv"), b"x"),
        tar_with(symlink("link", "/etc/passwd")),
        tar_with(device("dev")),
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "symlink", "device"],
)
def test_unsafe_archives_are_refused_and_nothing_written(service: Service, tmp_path: Path, archive: bytes) -> None:
    with service.client() as client:
        response = client.post(
            "/data", params={"path": "evil"}, content=archive, headers={"content-type": "application/x-tar"}
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "unsafe_path"
        assert client.get("/data").json()["items"] == []
    datastore = tmp_path / "aml" / "datastore"
    assert not (datastore / "evil").exists()
    assert [p for p in (datastore / ".versions").iterdir()] == []
    assert not (tmp_path / "escape.csv").exists() and not (tmp_path / "aml" / "escape.csv").exists()


def test_zip_with_symlink_and_traversal_is_refused(service: Service) -> None:
    for name, attr in (("../up.txt", 0o100644 << 16), ("link", 0o120777 << 16)):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            info = zipfile.ZipInfo(name)
            info.external_attr = attr
            archive.writestr(info, "/etc/passwd")
        with service.client() as client:
            response = client.post("/data", content=buffer.getvalue(), headers={"content-type": "application/zip"})
            assert response.status_code == 400, response.text


def test_zip_upload_works(service: Service) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("dir/a.csv", "a")
        archive.writestr("b.csv", "b")
    with service.client() as client:
        response = client.post(
            "/data", params={"wait": 30}, content=buffer.getvalue(), headers={"content-type": "application/zip"}
        )
        assert response.status_code == 200 and response.json()["files"] == 2


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


def test_fetch_of_unknown_model_or_version_answers_404_after_wait(service: Service) -> None:
    with service.client() as client:
        missing = client.post("/models/fetch", params={"wait": 30}, json={"model": "ghost"})
        assert missing.status_code == 404 and missing.json()["job"]["status"] == "Failed"
        assert "ghost" in missing.json()["detail"]
        upload(client, {"a.csv": b"1"})
        client.post("/runs", params={"wait": 60})
        unknown = client.post("/models/fetch", params={"wait": 30}, json={"version": 9})
        assert unknown.status_code == 404 and "no version 9" in unknown.json()["detail"]


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


def test_callback_hosts_are_checked(service: Service) -> None:
    with service.client() as client:
        for url in ("http://169.254.169.254/latest", "file:///etc/passwd", "http://user:pw@127.0.0.1/"):
            response = client.post("/runs", json={"callback_url": url})
            assert response.status_code == 422 and "callback_url" in response.json()["detail"]


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


def test_wait_on_the_hot_route_is_checked_like_everywhere(service: Service) -> None:
    with service.client() as client:
        for bad in ("-1", "3601", "nan", "inf", "soon"):
            response = client.get("/runs/anything", params={"wait": bad})
            assert response.status_code == 422 and response.json()["fields"] == ["wait"], bad
        assert client.get("/runs/anything", params={"wait": "0.1"}).status_code == 404


def test_named_tokens_record_who_did_what(make_service) -> None:
    import hashlib

    bare = "a-bare-token-without-name"
    service = make_service(AZML_API_TOKENS=f"ci:ci-secret-token,{bare}", AZML_API_READ_TOKENS="dash:read-secret")
    hashed = "token-" + hashlib.sha256(bare.encode()).hexdigest()[:8]
    with (
        service.client("ci-secret-token") as ci,
        service.client(bare) as other,
        service.client("read-secret") as reader,
    ):
        data = upload(ci, {"a.csv": b"1"}).json()
        assert data["created_by"] == "ci"
        run = other.post("/runs", params={"wait": 60}, json={}).json()
        assert run["created_by"] == hashed
        assert reader.get(f"/runs/{run['id']}").json()["created_by"] == hashed
        assert reader.post("/runs", json={}).status_code == 403
    login = httpx.post(f"{service.url}/ui/login", data={"token": "ci-secret-token", "next": "/ui/"})
    assert login.status_code == 303
    cookie = login.cookies["azml_session"]
    page = httpx.get(f"{service.url}/ui/", cookies={"azml_session": cookie})
    csrf = page.text.split('name="csrf" content="')[1].split('"')[0]
    made = httpx.post(
        f"{service.url}/runs", json={}, cookies={"azml_session": cookie}, headers={"X-CSRF-Token": csrf}
    ).json()
    assert made["created_by"] == "ci"
    service.stop()
    log = service.log.read_text()
    assert f"run job {run['id']} accepted from {hashed}" in log and "accepted from ci" in log
    assert "ci-secret-token" not in log and bare not in log
