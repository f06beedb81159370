"""The runs list's reads on each job store, side by side: SQLite beside PostgreSQL, 10,000 runs each.

    python -m bench.store_reads [--runs 10000] [--tries 20] [--database-url URL]

Times the store's own page read (what GET /runs runs, without HTTP) for: the newest page, a search
by a prefix of a backend run id deep in the list, a search by an exact experiment, and sorts by
duration and by a metric. Median milliseconds. PostgreSQL is a throw-away server (tests/postgres.py)
unless --database-url names one. Target (issue 20): a search under 100 ms with 10,000 runs.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bench.replicas import databases
from service.core.store import Job, JobStore, Order, Tx
from service.core.store_postgres import PostgresStore
from service.core.store_sqlite import SqliteStore


def fill(store: JobStore, count: int) -> None:
    spec = {"experiment": "bench", "script": "quick.py", "model": "m", "datapath": "d", "compute": "c", "args": {}}

    def insert(tx: Tx) -> None:
        for index in range(count):
            job = Job(
                id=f"run_{uuid.uuid4().hex[:20]}",
                kind="run",
                status="Completed",
                spec={**spec, "created_by": f"user-{index % 7}"},
                created_at=1.79e9 + index,
                started_at=1.79e9 + index,
                finished_at=1.79e9 + index + index % 13,
                backend_run_id=f"bench_{1_790_000_000 + index}_{uuid.uuid4().hex[:8]}",
                result={"metrics": {"accuracy": 0.5 + index % 50 / 100, "loss": 1 / (1 + index)}},
            )
            tx.insert_job(job)

    asyncio.run(store.write(insert))


def median_ms(read: Callable[[], object], tries: int) -> float:
    read()  # warm
    times = []
    for _ in range(tries):
        started = time.perf_counter()
        read()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def figures(store: JobStore, tries: int) -> dict[str, float]:
    deep = store.page("run", limit=5000)[-1]  # half way down the list: a search that must look far
    reads = {
        "newest page": lambda: store.page("run", limit=51),
        "backend id prefix": lambda: store.page("run", search=deep.backend_run_id[:16], limit=51),
        "exact experiment": lambda: store.page("run", search="bench", limit=51),
        "no match": lambda: store.page("run", search="nothing-like-it", limit=51),
        "sorted by duration": lambda: store.page("run", order=Order("duration"), limit=51),
        "sorted by a metric": lambda: store.page("run", order=Order("metric", metric="accuracy"), limit=51),
    }
    return {name: median_ms(read, tries) for name, read in reads.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--database-url", help="PostgreSQL to use (default: a throw-away server)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-reads-"))
    try:
        with databases(args.database_url, 1) as (url,):
            stores: dict[str, JobStore] = {
                "SQLite": SqliteStore(folder / "jobs.sqlite"),
                "PostgreSQL": PostgresStore(url),
            }
            try:
                found = {}
                for name, store in stores.items():
                    fill(store, args.runs)
                    found[name] = figures(store, args.tries)
            finally:
                for store in stores.values():
                    store.close()
        print(f"\njob store reads with {args.runs:,} runs (median ms of {args.tries}; target for a search < 100 ms):")
        for read in found["SQLite"]:
            print(f"  {read:20} SQLite {found['SQLite'][read]:6.1f}   PostgreSQL {found['PostgreSQL'][read]:6.1f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
