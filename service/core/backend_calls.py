"""The backend's blocking calls, run off the event loop in a thread pool of their own, timed and counted.

Every caller shares it: the worker carrying jobs out, the routes reading logs and models, the
run importer and the retention sweep. It is sized for the jobs that may run at once plus a few
for reads, so a burst of reads cannot take every thread a job needs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from service.observe.metrics import ServiceMetrics

T = TypeVar("T")


class BackendCalls:
    """`await calls(backend.get_log, run_id)`: fn(*args) in the pool; its time and errors to the metrics."""

    def __init__(self, *, threads: int, metrics: ServiceMetrics | None = None) -> None:
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="backend")
        self.metrics = metrics

    async def __call__(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        if self.metrics is None:
            return await loop.run_in_executor(self.executor, partial(fn, *args, **kwargs))
        operation = getattr(fn, "__name__", "call")
        started = time.perf_counter()
        try:
            return await loop.run_in_executor(self.executor, partial(fn, *args, **kwargs))
        except Exception:
            self.metrics.backend_errors.labels(operation).inc()
            raise
        finally:
            self.metrics.backend_seconds.labels(operation).observe(time.perf_counter() - started)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
