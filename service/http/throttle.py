"""Slowing down whoever guesses credentials: per-client backoff after repeated failures, in memory.

A client (by address) may fail FREE_FAILURES times within WINDOW seconds (a mistyped token,
an expired cookie); after that each further failure locks it out for twice as long as the
last, up to MAX_LOCKOUT seconds. While locked out, every request of that client that carries
credentials (a bearer token, a session cookie, a sign-in) is answered 429 with Retry-After
before its credentials are looked at, so a guess made then can't be told right from wrong.
A client that sends no credentials is never throttled (it learns nothing).

A client is an address, and many users may share one (NAT, an ingress): one of them guessing
must not lock the others out. So a credential that worked from that address before is still
looked at while the address is locked out (its users go on); any other credential is not, so
a guess made during the lockout learns nothing, even a right one. Credentials are remembered
by a keyed hash (this process's random key), never as they are.

Attached to the job store (attach()), failures are also counted there, across every replica,
and a lockout earned on one replica is honoured by the others within REFRESH seconds: a
guesser can't multiply its tries by the number of replicas behind the load balancer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from service.errors import StoreUnavailable

FREE_FAILURES = 10
WINDOW = 60.0
MAX_LOCKOUT = 60.0
MAX_CLIENTS = 10_000  # past this many tracked clients the oldest records are dropped
REFRESH = 1.0  # how often the lockouts other replicas decided are read from the store
PROVEN_PER_CLIENT = 32  # credentials remembered as having worked from one address
log = logging.getLogger("service")


class SharedFailures(Protocol):
    """Where failures are counted across replicas (the job store); lockouts in seconds from now by its clock."""

    def lockouts(self) -> dict[str, float]: ...

    async def auth_failed(self, client: str, *, free: int, window: float, max_lockout: float) -> float: ...


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
        self._shared: SharedFailures | None = None
        self._shared_locks: dict[str, float] = {}  # client → wall-clock end of a lockout from the store
        self._shared_read = 0.0
        self._writes: set[asyncio.Task] = set()
        self._key = secrets.token_bytes(32)
        self._proven: OrderedDict[str, set[bytes]] = OrderedDict()  # client → hashes of credentials that worked

    def attach(self, shared: SharedFailures) -> None:
        """Count failures in the store too, and honour the lockouts every replica decided."""
        self._shared = shared

    def _shared_wait(self, client: str) -> float:
        if self._shared is None:
            return 0.0
        now = time.time()
        if now - self._shared_read > REFRESH:
            self._shared_read = now
            try:
                self._shared_locks = {client: now + left for client, left in self._shared.lockouts().items()}
            except StoreUnavailable as exc:
                log.warning("reading the shared sign-in lockouts failed (%s); this replica's own counts apply", exc)
            except Exception:
                log.exception("reading the shared sign-in lockouts failed; this replica's own counts still apply")
        return self._shared_locks.get(client, 0.0) - now

    def _hash(self, credential: bytes) -> bytes:
        return hmac.new(self._key, credential, hashlib.sha256).digest()[:16]

    def succeeded(self, client: str, credential: bytes) -> None:
        """Remember that this credential worked from this client (it goes on while the client is locked out)."""
        proven = self._proven.pop(client, None) or set()
        self._proven[client] = proven  # most recently used last, so the oldest are dropped first
        if len(proven) < PROVEN_PER_CLIENT:
            proven.add(self._hash(credential))
        while len(self._proven) > MAX_CLIENTS:
            del self._proven[next(iter(self._proven))]

    def wait(self, client: str, credential: bytes | None = None) -> float:
        """Seconds this client must wait before `credential` is looked at (0: go on; always 0 for a credential
        that worked from this client before)."""
        record = self._records.get(client)
        remaining = 0.0 if record is None else record.locked_until - self._clock()
        remaining = max(remaining, self._shared_wait(client))
        if remaining > 0 and credential and self._hash(credential) in self._proven.get(client, ()):
            return 0.0
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
        if self._shared is not None:
            task = asyncio.get_running_loop().create_task(self._count_shared(client))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _count_shared(self, client: str) -> None:
        assert self._shared is not None
        try:
            until = await self._shared.auth_failed(client, free=FREE_FAILURES, window=WINDOW, max_lockout=MAX_LOCKOUT)
        except StoreUnavailable as exc:
            log.warning("counting a failed sign-in in the store failed (%s); this replica's own count applies", exc)
            return
        except Exception:
            log.exception("counting a failed sign-in in the store failed; this replica's own count still applies")
            return
        if until:
            self._shared_locks[client] = time.time() + until
