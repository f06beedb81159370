"""service/core/backend_calls.py: blocking backend calls run off the event loop, timed and counted."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from service.core.backend_calls import BackendCalls
from service.observe.metrics import ServiceMetrics


def test_a_blocking_call_leaves_the_event_loop_free(tmp_path: Path) -> None:
    calls = BackendCalls(threads=2)
    release = threading.Event()

    def slow() -> str:
        release.wait(5)
        return "done"

    async def scenario() -> tuple[str, int]:
        ticks = 0
        pending = asyncio.ensure_future(calls(slow))
        while ticks < 5:  # the loop runs while the call blocks its thread
            await asyncio.sleep(0.01)
            ticks += 1
        release.set()
        return await pending, ticks

    try:
        assert asyncio.run(scenario()) == ("done", 5)
    finally:
        calls.close()


def test_each_call_is_timed_and_a_failure_counted_by_its_name(tmp_path: Path) -> None:
    metrics = ServiceMetrics(tmp_path)
    calls = BackendCalls(threads=1, metrics=metrics)

    def get_log(run_id: str) -> str:
        return f"log of {run_id}"

    def list_models() -> list[str]:
        raise RuntimeError("the backend is down")

    async def scenario() -> str:
        with pytest.raises(RuntimeError):
            await calls(list_models)
        return await calls(get_log, "run_1")

    try:
        assert asyncio.run(scenario()) == "log of run_1"
    finally:
        calls.close()
    assert metrics.backend_errors.labels("list_models")._value.get() == 1
    assert metrics.backend_errors.labels("get_log")._value.get() == 0
    timed = {s.labels["operation"] for s in metrics.backend_seconds.collect()[0].samples if s.name.endswith("_count")}
    assert {"get_log", "list_models"} <= timed
