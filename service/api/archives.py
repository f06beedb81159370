"""A folder of downloaded files sent as a tar.gz stream (model versions, run outputs).

The files are staged once, under AZML_HOME (the backend's download writes them there), then
packed and compressed as they are sent: no archive is ever written to disk, and the staging
folder goes when the answer ends, sent or cut off. At most MAX_AT_ONCE archives are staged at
a time; past that the answer is 503 with Retry-After, so a burst of downloads can't fill the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tarfile
import tempfile
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Generator
from pathlib import Path
from urllib.parse import quote

from starlette.concurrency import iterate_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from amllib.errors import Conflict
from service.errors import Busy

MAX_AT_ONCE = 4
STAGING = ".archives"  # under AZML_HOME
STALE_SECONDS = 3600.0  # a staging folder this old was left by a process that died while sending it
PIECE = 1 << 20
_lock = threading.Lock()
_staged = 0


def _discard_stale(root: Path) -> None:
    for folder in root.glob("*"):
        with contextlib.suppress(OSError):
            if time.time() - folder.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)


def stage(home: Path, fill: Callable[[Path], list[str]], *, prefix: str) -> tuple[Path, list[str]]:
    """fill(folder) writes files into an empty folder under AZML_HOME and names them: (folder, names).
    The caller sends it with `send`, which removes the folder."""
    root = home / STAGING
    root.mkdir(parents=True, exist_ok=True)
    _discard_stale(root)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    try:
        return work, fill(work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _tar_gz(folder: Path, files: list[str]) -> Generator[bytes, None, None]:
    """The files as one tar.gz, a piece at a time (PAX headers, gzip by zlib; no piece over ~PIECE bytes)."""
    gzip = zlib.compressobj(6, zlib.DEFLATED, 31)
    written = 0
    for rel in files:
        path = folder / rel
        info = tarfile.TarInfo(rel)
        info.size, info.mtime, info.mode = path.stat().st_size, int(time.time()), 0o644
        header = info.tobuf(format=tarfile.PAX_FORMAT)
        written += len(header)
        yield gzip.compress(header)
        with path.open("rb") as source:
            sent = 0
            while sent < info.size and (piece := source.read(min(PIECE, info.size - sent))):
                sent += len(piece)
                yield gzip.compress(piece)
        if sent != info.size:
            raise Conflict(f"{rel} changed while it was being sent")
        padding = b"\0" * (-sent % tarfile.BLOCKSIZE)
        written += sent + len(padding)
        yield gzip.compress(padding)
    end = b"\0" * (2 * tarfile.BLOCKSIZE)
    written += len(end)
    yield gzip.compress(end + b"\0" * (-written % tarfile.RECORDSIZE))
    yield gzip.flush()


class _Archive(StreamingResponse):
    """A streamed answer that runs `cleanup` once it is over, whether it was sent, failed or never began."""

    def __init__(self, body: AsyncIterator[bytes], *, filename: str, cleanup: Callable[[], object]) -> None:
        quoted = quote(filename)
        disposition = (
            f'attachment; filename="{filename}"' if quoted == filename else f"attachment; filename*=utf-8''{quoted}"
        )
        super().__init__(body, media_type="application/gzip", headers={"Content-Disposition": disposition})
        self._cleanup = cleanup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await asyncio.to_thread(self._cleanup)


def send(home: Path, fill: Callable[[Path], list[str]], *, prefix: str, filename: str) -> StreamingResponse:
    """Stage the files (in this thread: the caller runs it off the event loop), then stream them as tar.gz."""
    with _lock:
        global _staged
        if _staged >= MAX_AT_ONCE:
            raise Busy(f"{MAX_AT_ONCE} archives are being sent already; try again in a moment")
        _staged += 1
    done = threading.Event()

    def cleanup(folder: Path | None = None) -> None:
        global _staged
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        if not done.is_set():
            done.set()
            with _lock:
                _staged -= 1

    try:
        folder, files = stage(home, fill, prefix=prefix)
    except BaseException:
        cleanup()
        raise
    pieces = _tar_gz(folder, files)

    async def body() -> AsyncIterator[bytes]:
        try:
            async for piece in iterate_in_threadpool(pieces):
                if piece:
                    yield piece
        finally:
            await asyncio.to_thread(pieces.close)

    return _Archive(body(), filename=filename, cleanup=lambda: cleanup(folder))
