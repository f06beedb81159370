"""The live event feed: every change of a job, in order, as server-sent events that resume after a drop.

Events are rows of the job store's `events` table, written in the same transaction
as the change they tell (service/core/jobs.py), so the feed can neither miss nor invent
one. Each has an increasing id; a client that reconnects with `Last-Event-ID` gets
exactly the events after it. New events are read from the table once per change into
an in-memory window; open streams sleep on one signal that every write sets, gather a
burst for a moment and send it as one chunk, so a hundred open dashboards cost little
more than one (measured in bench/dashboard.py).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from fastapi.sse import format_sse_event
from starlette.responses import StreamingResponse

from service.core.store import JobStore
from service.errors import StoreUnavailable

T = TypeVar("T")
log = logging.getLogger("service")
BATCH = 500
READERS = 4
IDLE_WAKE = 1.0  # an idle stream looks again this often: has its client gone? was a signal missed?
PING_SECONDS = 15.0
GATHER = 0.1  # a woken stream waits this long for the rest of a burst, then sends it at once
WINDOW = 5000  # the newest events kept in memory: streams that keep up never read the table


class EventFeed:
    """Tells open streams that something changed, and streams the events table."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.open_streams = 0
        # Replays and catch-ups read the table off the event loop, a few at a time: 200 streams replaying
        # from the start must not stall every other request (they pushed /healthz to seconds on the loop).
        self._readers = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="event-reader")
        self._signal: asyncio.Future | None = None
        self._window: list[tuple[int, str, str | None, str]] = []
        self._loaded = store.event_bounds()[1]
        self.on_job: Callable[[str], None] | None = None  # told of each job with new events (Jobs.wait's waiters)

    def changed(self) -> None:
        """Load what was just committed (by this replica or another) into the window once, then wake every
        open stream (on the loop)."""
        try:
            self._load()
        except StoreUnavailable as exc:  # what was committed is loaded at the next change, or by a stream's read
            log.warning("the live feed could not read new events: %s", exc)
        signal, self._signal = self._signal, None
        if signal is not None and not signal.done():
            signal.set_result(None)

    def _load(self) -> None:
        while rows := self.store.events_after(self._loaded, limit=BATCH, with_job=True):
            self._window.extend(rows)
            self._loaded = rows[-1][0]
            if self.on_job is not None:
                for job_id in {row[2] for row in rows if row[2]}:
                    self.on_job(job_id)
        if len(self._window) > 2 * WINDOW:
            del self._window[:-WINDOW]

    def close(self) -> None:
        self._readers.shutdown(wait=False, cancel_futures=True)

    async def _read(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """A store read in the feed's reader threads, never on the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._readers, partial(fn, *args, **kwargs))

    def _from_window(self, seq: int, job_id: str | None) -> list[tuple[int, str, str]] | None:
        """The events after seq from the in-memory window; None when the window does not reach back that far."""
        if not self._window or self._window[0][0] > seq + 1:
            return None
        if self._window[-1][0] <= seq:
            return []
        start = bisect.bisect_right(self._window, seq, key=lambda row: row[0])
        if job_id is None:
            return [(s, topic, data) for s, topic, _, data in self._window[start : start + BATCH]]
        # One job's events may lie behind many of others': filter the whole rest, then cut.
        mine = [(s, topic, data) for s, topic, job, data in self._window[start:] if job == job_id]
        return mine[:BATCH]

    async def _quiet(self, timeout: float) -> bool:
        """Sleep until something changes (True) or timeout seconds pass (False).

        Every stream waits on one shared future, so a change costs a callback per stream, not a task.
        """
        if self._signal is None:
            self._signal = asyncio.get_running_loop().create_future()
        done, _ = await asyncio.wait({self._signal}, timeout=timeout)
        if done:
            await asyncio.sleep(GATHER)
        return bool(done)

    def start_after(self, last_event_id: str | None, after: int | None) -> tuple[int, bool]:
        """Where a stream starts (after the client's last event, else after ?after=, else from now), and
        whether the client's id was ahead of the newest event.

        Such an id (a client that saw another store, or made one up) resumes at the newest, with a
        `reset`: waiting for ids that may never come would leave its stream silent for ever.
        """
        newest = self.store.event_bounds()[1]
        for value in (ascii_number(last_event_id), after):
            if value is not None:
                return min(value, newest), value > newest
        return newest, False

    async def stream(
        self,
        after: int,
        *,
        gone: Callable[[], bool],
        job_id: str | None = None,
        extra: Callable[[int], Awaitable[list[bytes]]] | None = None,
        ident: Callable[[int], str] = str,
        ahead: bool = False,
    ) -> AsyncIterator[bytes]:
        """The events after `after`, then the new ones as they happen, until the client is `gone()`.

        Each chunk is every event found at one wake, in the text/event-stream format. `extra(last
        seq)` adds events that are not rows (a run's new log lines), sent before the rows of the same
        wake, so a run's last lines arrive before its terminal status; `ident` makes each event's id
        (so such a stream can resume both). A dropped client is noticed within IDLE_WAKE seconds.
        """
        self.open_streams += 1
        try:
            oldest, _ = await self._read(self.store.event_bounds)
            if after and oldest and after < oldest - 1:  # the client fell behind what is kept
                yield sse(ident(after), "reset", '{"reason": "events were dropped; reload"}')
            elif ahead:
                yield sse(ident(after), "reset", '{"reason": "the event id was ahead of the newest; reload"}')
            last, woken, quiet_since = after, False, time.monotonic()
            while True:
                window = self._from_window(last, job_id) if woken else None
                try:
                    rows = (
                        window
                        if window is not None
                        else await self._read(self.store.events_after, last, job_id=job_id, limit=BATCH)
                    )
                except StoreUnavailable:  # the stream stays open and reads again once the store answers
                    if gone():
                        return
                    woken = await self._quiet(IDLE_WAKE)
                    continue
                chunk = b"".join(await extra(last)) if extra else b""  # read before the rows: the run's last lines
                chunk += b"".join(sse(ident(seq), topic, data) for seq, topic, data in rows)
                if rows:
                    last = rows[-1][0]
                if chunk:
                    yield chunk
                    quiet_since = time.monotonic()
                    if len(rows) == BATCH:
                        continue
                elif time.monotonic() - quiet_since > PING_SECONDS:
                    yield b": ping\n\n"  # keeps proxies from closing a quiet stream
                    quiet_since = time.monotonic()
                if gone():
                    return
                woken = await self._quiet(IDLE_WAKE)
        finally:
            self.open_streams -= 1


MAX_ID = 2**62


def ascii_number(text: str | None, *, most: int = MAX_ID) -> int | None:
    """A non-negative number written in ASCII digits (never '²' or '1.5'), capped at `most`; None otherwise."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > 30:
        return None
    return min(int(text), most)


def sse(event_id: str, event: str, data: str) -> bytes:
    """One event in the text/event-stream format (FastAPI's own encoder); data is JSON text."""
    return format_sse_event(data_str=data, event=event, id=event_id)


class Disconnect:
    """Tells when the client went away: one task waits for the ASGI disconnect instead of polling for it."""

    def __init__(self, receive: Callable[[], Awaitable[MutableMapping[str, Any]]]) -> None:
        self.gone = False
        self._task = asyncio.create_task(self._wait(receive))

    async def _wait(self, receive: Callable[[], Awaitable[MutableMapping[str, Any]]]) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone = True

    def __call__(self) -> bool:
        return self.gone

    def close(self) -> None:
        self._task.cancel()


class EventStream(StreamingResponse):
    """A text/event-stream response that proxies must neither cache nor buffer."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes]) -> None:
        super().__init__(content, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
