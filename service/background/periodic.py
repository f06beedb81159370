"""A background task that does one pass every so often and outlives its failures.

With several replicas, a task that must run on one of them at a time (the run importer,
the retention sweep) passes `lead`: each replica asks for the task's leader lease every
`check` seconds; the one that holds it runs the passes, and when it dies another takes the
lease once it runs out and runs a pass at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from amllib.errors import AmlError

log = logging.getLogger("service")


@dataclass(frozen=True)
class Leader:
    """take(): whether this replica holds (or now took) the task's lease of `seconds` (Tx.lead)."""

    take: Callable[[], Awaitable[bool]]
    seconds: float


async def every(
    interval: float, once: Callable[[], Awaitable[object]], *, what: str, lead: Leader | None = None
) -> None:
    """await once() now and then every `interval` s, forever; a failed pass is logged and the next one runs.

    lead: whether this replica is (still) the one to run it, asked every third of its lease.
    """
    due = 0.0
    while True:
        leading = await _leading(lead, what)
        if leading and time.monotonic() >= due:
            due = time.monotonic() + interval
            await _pass(once, what)
        elif not leading:
            due = 0.0  # whoever leads next runs a pass at once
        await asyncio.sleep(interval if lead is None else min(interval, lead.seconds / 3))


async def _leading(lead: Leader | None, what: str) -> bool:
    if lead is None:
        return True
    try:
        return await lead.take()
    except Exception:
        log.exception("%s: asking for the leader lease failed", what)
        return False


async def _pass(once: Callable[[], Awaitable[object]], what: str) -> None:
    try:
        await once()
    except AmlError as exc:
        log.warning("%s failed: %s", what, exc)
    except Exception:
        log.exception("%s failed", what)
