"""service/http/uploads.py: the body reaches the unpacking thread whole, in whole blocks, without extra copies."""

from __future__ import annotations

import asyncio
import io
import os
import tarfile
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from amllib.digest import tree_digest
from service.http import uploads
from service.http.unpack import BLOCK, Limits


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
