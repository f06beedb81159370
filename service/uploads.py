"""Receiving a data upload: a tar/tar.gz/zip body or multipart files, unpacked into a staging folder.

A tar body is unpacked while it arrives: the event loop hands 1 MiB blocks through
a small bounded queue to a thread that reads the tar stream and writes each file,
hashing it on the way (so the data version needs no second read). Memory stays a
few MiB whatever the size. A zip needs its central directory, at the end, so it is
spooled to disk once, checked whole, then unpacked. Every entry is checked: no
absolute path, no '..', no link or device; limits on bytes and files answer 413.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import lzma
import queue
import stat
import tarfile
import zipfile
import zlib
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from amllib.digest import TreeHasher, TreeSummary
from amllib.errors import InvalidInput, UnsafePath
from amllib.paths import safe_entry
from service.errors import TooLarge

BLOCK = 1 << 20
TAR_TYPES = frozenset(
    {
        "application/x-tar",
        "application/gzip",
        "application/x-gzip",
        "application/x-gtar",
        "application/x-compressed-tar",
        "application/tar+gzip",
    }
)
ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed"})


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_files: int


class TreeWriter:
    """Writes checked entries under root, enforcing the limits and hashing as it goes."""

    def __init__(self, root: Path, limits: Limits) -> None:
        self.root = root
        self.limits = limits
        self.hasher = TreeHasher()
        self.total = 0
        self.count = 0

    def add_dir(self, name: str) -> None:
        if name.strip("./") == "":
            return
        target = self.root / safe_entry(name)
        try:
            target.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise InvalidInput(f"upload entry {name!r} clashes with a file of the same name") from exc

    def add_file(self, name: str, source: BinaryIO) -> None:
        rel = safe_entry(name)
        self.count += 1
        if self.count > self.limits.max_files:
            raise TooLarge(f"the upload has more than {self.limits.max_files} files (AZML_MAX_UPLOAD_FILES)")
        target = self.root / rel
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle = target.open("wb")
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
            raise InvalidInput(f"upload entry {name!r} clashes with another entry of the same name") from exc
        digest, size = hashlib.sha256(), 0
        with handle:
            while block := source.read(BLOCK):
                size += len(block)
                self.total += len(block)
                if self.total > self.limits.max_bytes:
                    raise TooLarge(f"the upload is larger than {self.limits.max_bytes} bytes (AZML_MAX_UPLOAD_BYTES)")
                digest.update(block)
                handle.write(block)
        self.hasher.add(rel.as_posix(), size, digest.hexdigest())

    def summary(self) -> TreeSummary:
        summary = self.hasher.summary()
        if summary.files == 0:
            raise InvalidInput("the upload holds no files")
        return summary


class _Pipe(io.RawIOBase):
    """A blocking reader for the unpacking thread, fed blocks by the event loop."""

    def __init__(self, depth: int = 8) -> None:
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._pending = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            if self._eof:
                return 0
            block = self._queue.get()
            if block is None:
                self._eof = True
                return 0
            self._pending = memoryview(block)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    async def put(self, block: bytes | None, consumer: asyncio.Future) -> bool:
        """Queue a block (None: end); False if the consumer has stopped and will take no more."""
        while True:
            if consumer.done():
                return False
            try:
                self._queue.put_nowait(block)
                return True
            except queue.Full:
                await asyncio.sleep(0.001)

    def abort(self) -> None:
        """Unblock a waiting reader for good: empty the queue and mark the end."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put_nowait(None)


def _entry_kind(member: tarfile.TarInfo) -> str:
    if member.issym() or member.islnk():
        return "link"
    if member.isdev() or member.isfifo():
        return "device"
    return "special file"


def unpack_tar(fileobj: BinaryIO, writer: TreeWriter) -> TreeSummary:
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*") as archive:
            for member in archive:
                if member.name.strip("./"):
                    safe_entry(member.name)
                if member.isdir():
                    writer.add_dir(member.name)
                elif member.isreg():
                    writer.add_file(member.name, archive.extractfile(member))
                else:
                    raise UnsafePath(
                        f"archive entry {member.name!r} is a {_entry_kind(member)}; only files and folders are accepted"
                    )
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError) as exc:
        raise InvalidInput(f"the body is not a readable tar archive: {exc}") from exc
    return writer.summary()


def unpack_zip(path: Path, writer: TreeWriter) -> TreeSummary:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput(f"the body is not a readable zip archive: {exc}") from exc
    with archive:
        infos = archive.infolist()
        for info in infos:  # check every entry before writing any
            if info.filename.strip("./"):
                safe_entry(info.filename)
            file_type = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip tool recorded no type
            if file_type and file_type not in (stat.S_IFREG, stat.S_IFDIR):
                raise UnsafePath(f"archive entry {info.filename!r} is a link or special file; only files are accepted")
        if sum(1 for i in infos if not i.is_dir()) > writer.limits.max_files:
            raise TooLarge(f"the upload has more than {writer.limits.max_files} files (AZML_MAX_UPLOAD_FILES)")
        if sum(i.file_size for i in infos) > writer.limits.max_bytes:
            raise TooLarge(f"the upload is larger than {writer.limits.max_bytes} bytes (AZML_MAX_UPLOAD_BYTES)")
        try:
            for info in infos:
                if info.is_dir():
                    writer.add_dir(info.filename)
                else:
                    with archive.open(info) as source:
                        writer.add_file(info.filename, source)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise InvalidInput(f"the zip archive is damaged: {exc}") from exc
    return writer.summary()


def check_length(declared: str | None, limits: Limits) -> None:
    if declared and declared.isdigit() and int(declared) > limits.max_bytes:
        raise TooLarge(f"the body ({declared} bytes) is larger than {limits.max_bytes} bytes (AZML_MAX_UPLOAD_BYTES)")


async def _blocks(stream: AsyncIterator[bytes], limits: Limits) -> AsyncIterator[bytes]:
    """The body regrouped into ~1 MiB blocks, refusing more than the byte limit."""
    received, buffer = 0, bytearray()
    async for chunk in stream:
        received += len(chunk)
        if received > limits.max_bytes:
            raise TooLarge(f"the body is larger than {limits.max_bytes} bytes (AZML_MAX_UPLOAD_BYTES)")
        buffer += chunk
        if len(buffer) >= BLOCK:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


async def receive_tar(
    stream: AsyncIterator[bytes], *, declared_length: str | None, staging: Path, limits: Limits, executor: Executor
) -> TreeSummary:
    """Unpack a tar (optionally compressed) body into staging while it arrives."""
    check_length(declared_length, limits)
    pipe = _Pipe()
    writer = TreeWriter(staging, limits)
    loop = asyncio.get_running_loop()
    consumer = loop.run_in_executor(executor, unpack_tar, io.BufferedReader(pipe, BLOCK), writer)
    try:
        async for block in _blocks(stream, limits):
            if not await pipe.put(block, consumer):
                break
        await pipe.put(None, consumer)
    except BaseException:
        pipe.abort()
        await asyncio.wait([consumer])
        raise
    return await consumer


async def receive_zip(
    stream: AsyncIterator[bytes], *, declared_length: str | None, staging: Path, limits: Limits, executor: Executor
) -> TreeSummary:
    """Spool a zip body next to staging (it is read from its end), then check and unpack it."""
    check_length(declared_length, limits)
    loop = asyncio.get_running_loop()
    spool = staging.with_name(staging.name + ".zip")
    try:
        with spool.open("wb") as handle:
            async for block in _blocks(stream, limits):
                await loop.run_in_executor(executor, handle.write, block)
        return await loop.run_in_executor(executor, unpack_zip, spool, TreeWriter(staging, limits))
    finally:
        spool.unlink(missing_ok=True)


async def receive_files(files: list, *, staging: Path, limits: Limits, executor: Executor) -> TreeSummary:
    """Write multipart `files` parts (already parsed by Starlette) into staging."""
    writer = TreeWriter(staging, limits)
    loop = asyncio.get_running_loop()
    for upload in files:
        if not getattr(upload, "filename", None):
            raise InvalidInput("every 'files' part needs a filename")
        await loop.run_in_executor(executor, writer.add_file, upload.filename, upload.file)
    return writer.summary()
