"""Backend reads with many active runs: the worker's shared read budget against polling each run on its own.

    python -m bench.poll_budget [--runs 200] [--seconds 60] [--budget 5]

The service's own Worker, Jobs and JobStore watch `--runs` running jobs of a counting stand-in
backend (reads cost nothing, so only the watcher's own pacing shows), first with the budget of an
Azure backend (AZML_BACKEND_READS_PER_SECOND), then without (as the local backend runs), each for
half of `--seconds`. Halfway through each phase one run ends; the time until GET /runs/{id} would
show it (its job ended in the store) is printed beside the reads per minute.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from amllib.backends.base import AliasBook, Backend, RunInfo, RunStatus
from amllib.settings import Settings
from service.core.events import EventFeed
from service.core.jobs import Jobs
from service.core.schemas import render
from service.core.store import Job
from service.core.store_sqlite import SqliteStore
from service.core.worker import Worker


class CountingBackend(Backend):
    """Runs that stay Running until told to end; every read is counted."""

    name = "counting"

    def __init__(self) -> None:
        self.reads = 0
        self.ended: dict[str, float] = {}

    def get_run(self, run_id: str) -> RunInfo:
        self.reads += 1
        status = RunStatus.FAILED if run_id in self.ended else RunStatus.RUNNING
        return RunInfo(run_id=run_id, status=status, experiment="bench", script="x.py", created_at=0.0, error="ended")

    def get_metrics(self, run_id: str) -> dict[str, list[Any]]:
        self.reads += 1
        return {}

    def get_log(self, run_id: str, *, tail: int | None = None) -> str:
        return ""

    def upload_data(self, src_dir: Path, *, target_path: str) -> Any:
        raise NotImplementedError

    def list_data(self) -> list:
        return []

    def ensure_compute(self, name: str) -> str:
        return name

    def submit_run(self, spec: Any) -> str:
        raise NotImplementedError

    def find_runs(self, experiment: str, *, tag: str, value: str) -> list[str]:
        return []

    def list_runs(self, *, created_after: float = 0.0, limit: int = 500) -> list[RunInfo]:
        return []

    def cancel_run(self, run_id: str) -> None:
        pass

    def list_run_outputs(self, run_id: str) -> list[str]:
        return []

    def download_run_outputs(self, run_id: str, dest: Path) -> list[str]:
        return []

    def register_model(self, *, run_id: str, model_name: str, tags: dict[str, Any]) -> Any:
        raise NotImplementedError

    def list_models(self) -> list[str]:
        return []

    def list_model_versions(self, name: str) -> list:
        return []

    def download_model(self, name: str, version: int, dest: Path) -> list[str]:
        raise NotImplementedError

    def read_aliases(self, name: str) -> AliasBook:
        return AliasBook()

    def write_aliases(self, name: str, book: AliasBook, *, expected: str | None) -> bool:
        raise NotImplementedError

    def update_version(self, name: str, version: int, **changes: Any) -> Any:
        raise NotImplementedError


async def phase(*, runs: int, seconds: float, budget: float | None, home: Path) -> tuple[float, float]:
    """(backend reads per minute, seconds from one run's end to its job's end in the store)."""
    backend = CountingBackend()
    settings = Settings(
        _env_file=None,
        home=home,
        backend="azureml-v2" if budget else "local",
        backend_reads_per_second=budget or 1.0,
        poll_seconds=1.0,
        run_import_seconds=0,
    )
    store = SqliteStore(home / "jobs.sqlite", synchronous="NORMAL")
    feed = EventFeed(store)
    jobs = Jobs(store, render=lambda job: render(job, backend.name), feed=feed)
    worker = Worker(settings=settings, backend=backend, jobs=jobs)
    ids = []
    for index in range(runs):
        spec = {"experiment": "bench", "script": "x.py", "model": "m", "datapath": "d", "compute": "c"}
        job = Job(id=f"run_{uuid.uuid4().hex[:20]}", kind="run", status="Running", spec=spec, created_at=time.time())
        job.backend_run_id = f"bench-{index}"
        stored, _ = await jobs.create(job)
        ids.append(stored.id)
        worker.start(stored, resumed=True)
    started, reads_before = time.monotonic(), backend.reads
    await asyncio.sleep(seconds / 2)
    ended_at = time.monotonic()
    backend.ended[f"bench-{runs // 2}"] = ended_at
    while store.get(ids[runs // 2]).status == "Running":
        await asyncio.sleep(0.05)
    latency = time.monotonic() - ended_at
    await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))
    per_minute = (backend.reads - reads_before) / (time.monotonic() - started) * 60
    await worker.close()
    feed.close()
    store.close()
    return per_minute, latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--budget", type=float, default=5.0, help="AZML_BACKEND_READS_PER_SECOND")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-poll-") as folder:
        budgeted = asyncio.run(
            phase(runs=args.runs, seconds=args.seconds / 2, budget=args.budget, home=Path(folder, "a"))
        )
        free = asyncio.run(phase(runs=args.runs, seconds=args.seconds / 2, budget=None, home=Path(folder, "b")))
    bound = args.runs * 2 / args.budget
    print(f"{args.runs} active runs, {args.seconds / 2:.0f} s each")
    print(
        f"  budget {args.budget:g}/s ({args.budget * 60:.0f}/min): {budgeted[0]:7.0f} reads/min; "
        f"an ended run seen after {budgeted[1]:5.1f} s (bound: {bound:.0f} s = runs × 2 reads ÷ budget)"
    )
    print(f"  no budget (local):   {free[0]:7.0f} reads/min; an ended run seen after {free[1]:5.1f} s")


if __name__ == "__main__":
    main()
