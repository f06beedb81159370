"""One budget of backend reads per second for every run the worker watches together.

Each watched run is polled on its own; on Azure, 200 running jobs polled every second would be
~200 requests a second against the workspace's request quotas (answered 429). The watchers take
their reads from one token bucket instead: at most AZML_BACKEND_READS_PER_SECOND on average (a
burst of one second's worth), so the read rate stays under the budget however many runs are
active, and each run's status is read at least every (active runs × reads per poll ÷ budget)
seconds. The local backend reads files, so it has no budget.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

EPSILON = 1e-9
MIN_SLEEP = 0.001  # never a sleep too short to move the clock


class ReadBudget:
    """A token bucket: `rate` reads a second on average, at most `rate` at once."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._tokens = rate
        self._stamp = clock()
        self._lock = asyncio.Lock()

    async def take(self, reads: int = 1) -> None:
        """Wait until `reads` reads fit in the budget, then spend them (first come, first served)."""
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self.rate, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= reads - EPSILON:  # float sums of refills fall a hair short of whole reads
                    self._tokens = max(0.0, self._tokens - reads)
                    return
                await self._sleep(max(MIN_SLEEP, (reads - self._tokens) / self.rate))
