"""Jobs' JSON answers kept per stored row, so a job polled again unchanged is sent without building it again.

GET /runs/{id} is what dashboards and pipelines poll; most polls find the row as it was.
Decoding the row, rendering it and encoding the JSON cost more than reading it (bench/api_latency.py),
so the bytes made for a row are kept under that row: any change to the row (status, result, lease,
callback) is a different key, and the answer is built afresh. Nothing is ever invalidated by hand.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from service.core.schemas import render
from service.core.store import COLUMNS, Job

KIND = COLUMNS.split(", ").index("kind")  # its place in a stored row


def encode(body: Any) -> bytes:
    """JSON exactly as starlette's JSONResponse writes it."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


class JobBodies:
    """The JSON bytes of the last `size` rows answered, newest kept."""

    def __init__(self, backend: str, *, size: int = 4096) -> None:
        self.backend = backend
        self.size = size
        self._bodies: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def body(self, row: tuple[Any, ...]) -> bytes:
        with self._lock:
            found = self._bodies.get(row)
            if found is not None:
                self._bodies.move_to_end(row)
                return found
        made = encode(render(Job.from_row(row), self.backend))
        with self._lock:
            self._bodies[row] = made
            if len(self._bodies) > self.size:
                self._bodies.popitem(last=False)
        return made
