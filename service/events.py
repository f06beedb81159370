"""The live event feed: every change of a job, in order, as server-sent events that resume after a drop.

Events are rows of the job store's `events` table, written in the same transaction
as the change they tell (service/jobs.py), so the feed can neither miss nor invent
one. Each has an increasing id; a client that reconnects with `Last-Event-ID` gets
exactly the events after it. Open streams sleep on one in-process signal that every
write sets, so a hundred open dashboards cost a wake-up and a small read per change,
not a poll each.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi.sse import ServerSentEvent

from service.store import JobStore

BATCH = 500
IDLE_WAKE = 1.0  # an idle stream looks again this often: has its client gone? was a signal missed?


class EventFeed:
    """Tells open streams that something changed, and streams the events table."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.open_streams = 0
        self._signal = asyncio.Event()

    def changed(self) -> None:
        """Wake every open stream (called on the event loop after a write commits)."""
        self._signal.set()
        self._signal = asyncio.Event()

    async def _quiet(self, timeout: float) -> None:
        signal = self._signal
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signal.wait(), timeout)

    def start_after(self, last_event_id: str | None, after: int | None) -> int:
        """Where a stream starts: after the client's last event, else after ?after=, else from now."""
        for value in (last_event_id, None if after is None else str(after)):
            if value is not None and value.isascii() and value.isdigit() and len(value) <= 18:
                return int(value)
        return self.store.event_bounds()[1]

    async def stream(
        self,
        after: int,
        *,
        gone: Callable[[], Awaitable[bool]],
        job_id: str | None = None,
        extra: Callable[[int], Awaitable[list[ServerSentEvent]]] | None = None,
        ident: Callable[[int], str] = str,
    ) -> AsyncIterator[ServerSentEvent]:
        """The events after `after`, then each new one as it happens, until the client is `gone()`.

        `extra(last seq)` adds events that are not rows (a run's new log lines), looked for at
        every wake; `ident` makes each event's id (so such a stream can resume both). A dropped
        client is noticed within IDLE_WAKE seconds, not only at the next write that fails.
        """
        self.open_streams += 1
        try:
            oldest, _ = self.store.event_bounds()
            if after and oldest and after < oldest - 1:  # the client fell behind what is kept
                yield ServerSentEvent(event="reset", data={"reason": "events were dropped; reload"}, id=str(after))
            last = after
            while True:
                rows = self.store.events_after(last, job_id=job_id, limit=BATCH)
                for seq, topic, data in rows:
                    yield ServerSentEvent(id=ident(seq), event=topic, raw_data=data)
                if rows:
                    last = rows[-1][0]
                    continue
                for event in await extra(last) if extra else []:
                    yield event
                if await gone():
                    return
                await self._quiet(IDLE_WAKE)
        finally:
            self.open_streams -= 1
