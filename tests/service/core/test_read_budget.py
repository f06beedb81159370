"""service/core/read_budget.py: every watcher's reads come out of one budget per second."""

from __future__ import annotations

import asyncio

from service.core.read_budget import ReadBudget


def test_reads_beyond_the_budget_wait_for_it() -> None:
    now = [0.0]
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)
        now[0] += seconds

    async def scenario() -> None:
        budget = ReadBudget(5, clock=lambda: now[0], sleep=sleep)
        for _ in range(25):  # 5 at once (a second's worth), then one every 0.2 s
            await budget.take(1)

    asyncio.run(scenario())
    assert round(now[0], 6) == 4.0  # 25 reads at 5 a second, after a burst of 5: 4 s
    assert all(abs(w - 0.2) < 1e-9 for w in waited)


def test_retry_after_is_honoured() -> None:
    from types import SimpleNamespace

    from amllib.backends.azure.retry import retry_after, with_retry

    throttled = Exception("429")
    throttled.response = SimpleNamespace(status_code=429, headers={"Retry-After": "7"})  # type: ignore[attr-defined]
    assert retry_after(throttled) == 7.0
    slept: list[float] = []
    calls = iter([throttled, None])

    def call() -> str:
        failure = next(calls)
        if failure:
            raise failure
        return "ok"

    assert with_retry("reading", call, base_delay=0.5, sleep=slept.append) == "ok"
    assert slept == [7.0]


def test_refills_that_sum_a_hair_short_of_a_read_never_spin() -> None:
    """0.2 s refills at 5/s sum to 0.9999999999999998 reads, not 1: the budget must not wait for ever-tinier slices."""
    now = [2.6]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        assert len(waits) < 1000, "the budget spun on sleeps too short to move the clock"
        now[0] += seconds

    async def scenario() -> None:
        budget = ReadBudget(5, clock=lambda: now[0], sleep=sleep)
        for _ in range(200):
            await budget.take(1)

    asyncio.run(scenario())
    assert all(wait >= 0.001 for wait in waits)
