"""service/http/unpack.py through POST /data: what an archive may hold, and nothing written when it may not."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.service.conftest import Service, assert_refused, upload


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


def test_folders_count_toward_the_entry_limit(make_service) -> None:
    service = make_service(AZML_MAX_UPLOAD_FILES="20")
    with service.client() as client:
        response = client.post("/data", content=tar_of_folders(50), headers={"content-type": "application/gzip"})
        assert_refused(response, 413, "AZML_MAX_UPLOAD_FILES")
        deep = upload(client, {"/".join(f"d{i}" for i in range(25)) + "/x.csv": b"1"})
        assert_refused(deep, 413, "AZML_MAX_UPLOAD_FILES")  # implied folders count too
        assert upload(client, {"a/b/c.csv": b"1"}).status_code == 200
