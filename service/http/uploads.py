"""Receiving a data upload body (tar, tar.gz, zip or multipart) into a staging folder while it arrives.

The event loop hands 256 KiB blocks (unpack.BLOCK) through a small bounded pipe to a thread of
the upload's own, which unpacks them (service/http/unpack.py). A client that stalls
therefore holds only its own thread, never one that background work needs, and
a body that stops arriving for AZML_BODY_TIMEOUT seconds is cut off (408). The
raw body counts against AZML_MAX_UPLOAD_BYTES as it arrives, whatever its form,
and nothing is spooled outside the staging folder's disk (AZML_HOME).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from python_multipart.multipart import parse_options_header

from amllib.digest import TreeSummary
from amllib.errors import InvalidInput
from service.errors import BodyTimeout, Busy
from service.http.unpack import BLOCK, Limits, TreeWriter, spool_and_unpack_zip, unpack_multipart, unpack_tar

T = TypeVar("T")
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
MULTIPART = "multipart/form-data"
UPLOAD_TYPES = TAR_TYPES | ZIP_TYPES | {MULTIPART}


class _Pipe:
    """A blocking reader for the unpacking thread, fed blocks by the event loop.

    read(n) hands over a queued block itself when it fits (no copy): every copy made while holding
    the GIL slows the event loop feeding this thread (bench/upload_throughput.py).
    """

    def __init__(self, depth: int = 16) -> None:
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._pending: bytes | memoryview = b""
        self._eof = False

    def read(self, size: int = -1) -> bytes:
        while not self._pending:
            if self._eof:
                return b""
            block = self._queue.get()
            if block is None:
                self._eof = True
                return b""
            self._pending = block
        if size < 0 or size >= len(self._pending):
            chunk, self._pending = self._pending, b""
            return chunk if isinstance(chunk, bytes) else bytes(chunk)
        view = memoryview(self._pending)
        chunk, self._pending = bytes(view[:size]), view[size:]
        return chunk

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


MAX_UPLOADS_AT_ONCE = 64  # each upload unpacks in a thread of its own: past this many, 503 + Retry-After
_uploads_lock = threading.Lock()
_uploads = 0


@contextlib.contextmanager
def upload_slot() -> Iterator[None]:
    """One of MAX_UPLOADS_AT_ONCE places for an upload being received (Busy when none is free): stalled
    clients can't make the service start a thread each without bound."""
    global _uploads
    with _uploads_lock:
        if _uploads >= MAX_UPLOADS_AT_ONCE:
            raise Busy(f"{MAX_UPLOADS_AT_ONCE} uploads are being received already; try again in a moment")
        _uploads += 1
    try:
        yield
    finally:
        with _uploads_lock:
            _uploads -= 1


def in_own_thread(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Run fn in a new thread of its own; its result (or error) arrives as a future on this loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(error: BaseException | None, result: Any) -> None:
        if not future.done():
            future.set_exception(error) if error is not None else future.set_result(result)

    def target() -> None:
        try:
            outcome: tuple[BaseException | None, Any] = (None, fn(*args))
        except BaseException as exc:
            outcome = (exc, None)
        with contextlib.suppress(RuntimeError):  # a closed loop: the service is stopping, nobody waits
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=target, name="upload", daemon=True).start()
    return future


def check_declared_length(declared: str | None, limits: Limits) -> None:
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limits.max_bytes:
        raise limits.too_big(f"the body ({declared} bytes)")


async def _blocks(stream: AsyncIterator[bytes], limits: Limits, timeout: float) -> AsyncIterator[bytes]:
    """The body regrouped into blocks of unpack.BLOCK; refused past the byte limit or after `timeout` s of silence."""
    received, buffer = 0, bytearray()
    chunks = aiter(stream)
    while True:
        try:
            chunk = await asyncio.wait_for(anext(chunks), timeout)
        except StopAsyncIteration:
            break
        except TimeoutError as exc:
            raise BodyTimeout(f"no part of the body arrived for {timeout:g} s (AZML_BODY_TIMEOUT)") from exc
        received += len(chunk)
        if received > limits.max_bytes:
            raise limits.too_big("the body")
        buffer += chunk
        while len(buffer) >= BLOCK:  # whole blocks: the unpacker reads BLOCK at a time and takes each as is
            with memoryview(buffer) as view:
                block = bytes(view[:BLOCK])
            del buffer[:BLOCK]
            yield block
    if buffer:
        yield bytes(buffer)


def _unpacker(content_type: str, staging: Path, writer: TreeWriter) -> Callable[[Any], TreeSummary]:
    media, options = parse_options_header(content_type)
    media_name = media.decode("latin-1").lower()
    if media_name in TAR_TYPES:
        return lambda body: unpack_tar(body, writer)
    if media_name in ZIP_TYPES:
        spool = staging.with_name(staging.name + ".zip")
        return lambda body: spool_and_unpack_zip(body, spool, writer)
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidInput("a multipart/form-data body needs a boundary in its Content-Type")
    return lambda body: unpack_multipart(body, boundary, writer)


async def receive(
    stream: AsyncIterator[bytes],
    *,
    content_type: str,
    declared_length: str | None,
    staging: Path,
    limits: Limits,
    timeout: float,
) -> TreeSummary:
    """Unpack an upload body into staging while it arrives, in a thread of its own (one of a bounded number)."""
    check_declared_length(declared_length, limits)
    unpack = _unpacker(content_type, staging, TreeWriter(staging, limits))
    with upload_slot():
        pipe = _Pipe()
        consumer = in_own_thread(unpack, pipe)
        try:
            async for block in _blocks(stream, limits, timeout):
                if not await pipe.put(block, consumer):
                    break
            await pipe.put(None, consumer)
        except BaseException:
            pipe.abort()
            await asyncio.wait([consumer])
            if not consumer.cancelled():
                consumer.exception()  # retrieved: the error being raised here is the one to report
            raise
        return await consumer
