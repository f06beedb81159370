"""Slowing down whoever guesses credentials: per-client backoff after repeated failures, in memory.

A client (by address) may fail FREE_FAILURES times within WINDOW seconds (a mistyped token,
an expired cookie); after that each further failure locks it out for twice as long as the
last, up to MAX_LOCKOUT seconds. While locked out, every request of that client that carries
credentials (a bearer token, a session cookie, a sign-in) is answered 429 with Retry-After
before its credentials are looked at, so a guess made then can't be told right from wrong.
A client that sends no credentials is never throttled (it learns nothing). Per replica; the
counts live as long as the process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

FREE_FAILURES = 10
WINDOW = 60.0
MAX_LOCKOUT = 60.0
MAX_CLIENTS = 10_000  # past this many tracked clients the oldest records are dropped


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0
    lockout: float = 0.0


class Throttle:
    """Failures by client address, and whether a client must wait."""

    def __init__(self, *, on_throttled: Callable[[], None] | None = None, clock: Callable[[], float] = time.monotonic):
        self._records: dict[str, _Record] = {}
        self._clock = clock
        self._on_throttled = on_throttled

    def wait(self, client: str) -> float:
        """Seconds this client must wait before its credentials are looked at again (0: go on)."""
        record = self._records.get(client)
        remaining = 0.0 if record is None else record.locked_until - self._clock()
        if remaining > 0 and self._on_throttled is not None:
            self._on_throttled()
        return max(0.0, remaining)

    def failed(self, client: str) -> None:
        """Count a failure (wrong token, bad cookie, failed sign-in); lock the client out once it has too many."""
        now = self._clock()
        record = self._records.pop(client, None) or _Record()
        self._records[client] = record  # most recently failing last, so the oldest are dropped first
        record.failures = [t for t in record.failures if now - t < WINDOW] + [now]
        if len(record.failures) > FREE_FAILURES:
            record.lockout = min(MAX_LOCKOUT, max(1.0, record.lockout * 2))
            record.locked_until = now + record.lockout
        elif not record.failures[:-1]:
            record.lockout = 0.0
        while len(self._records) > MAX_CLIENTS:
            del self._records[next(iter(self._records))]
