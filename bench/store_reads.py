"""The runs list's reads on each job store at a million runs, beside the same reads at 10,000 from the same run.

    python -m bench.store_reads [--runs 1000000] [--baseline 10000] [--tries 20] [--migrate]
                                [--database-url URL]

Times the store's own page read (what GET /runs runs, without HTTP) on SQLite and PostgreSQL: the newest
page, a search by a prefix of a backend run id deep in the list, a search by an exact experiment, a
search matching nothing, sorts by duration and by a metric (first page, and a page far down through a
cursor); and what every replica does every few seconds whatever the page (its look for jobs to take
over, a write) and the retention sweep's read. Median milliseconds. The runs are loaded through the
store's own bulk write (`Tx.insert_jobs`, one statement for a batch). `--migrate` takes the big stores
back to revision 0007 and times the upgrade to the newest (0008: columns filled, metrics table built,
indexes made; 0009: two empty columns; 0010: every run's parameters, read in batches), with a reader
and a writer running beside it: how long each waited at most. PostgreSQL is a
throw-away server (tests/postgres.py) unless --database-url names one. Goal (issue 31): every read
≤ 20 ms at 1,000,000 runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

from bench.replicas import databases
from service.core.jobs import TERMINAL_NAMES
from service.core.migrations import downgrade, upgrade
from service.core.store import Job, JobStore, Order, Tx
from service.core.store_postgres import PostgresStore
from service.core.store_sqlite import SqliteStore

BATCH = 10_000


def runs(start: int, count: int, *, base: float) -> list[Job]:
    """Finished runs, one a second from `base`, each with two metrics and a backend run id as the scripts make."""
    spec = {"experiment": "bench", "script": "quick.py", "model": "m", "datapath": "d", "compute": "c", "args": {}}
    return [
        Job(
            id=f"run_{uuid.uuid4().hex[:20]}",
            kind="run",
            status="Completed",
            spec={
                **spec,
                "created_by": f"user-{index % 7}",
                "estimators": 10 + index % 90,
                "args": {"seed": str(index % 10)},
            },
            created_at=base + index,
            started_at=base + index,
            finished_at=base + index + index % 13,
            backend_run_id=f"bench_{1_790_000_000 + index}_{uuid.uuid4().hex[:8]}",
            result={"metrics": {"accuracy": 0.5 + index % 50 / 100, "loss": 1 / (1 + index)}},
        )
        for index in range(start, start + count)
    ]


def fill(store: JobStore, count: int) -> float:
    """Load `count` runs in batches through the store's bulk insert; the seconds it took."""
    started, base = time.perf_counter(), time.time() - count - 60
    for start in range(0, count, BATCH):
        batch = runs(start, min(BATCH, count - start), base=base)

        def insert(tx: Tx, batch: list[Job] = batch) -> None:
            tx.insert_jobs(batch)

        asyncio.run(store.write(insert))
    return time.perf_counter() - started


def median_ms(read: Callable[[], object], tries: int) -> float:
    read()  # warm
    times = []
    for _ in range(tries):
        started = time.perf_counter()
        read()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def claim(tx: Tx) -> object:
    return tx.claim("bench", terminal=TERMINAL_NAMES, lease=30.0, everything=False, limit=500)


def figures(store: JobStore, count: int, tries: int) -> dict[str, float]:
    metric = Order("metric", metric="accuracy")
    deep = store.page("run", limit=1, after=(None, count // 2))[
        0
    ]  # half way down the list: a search that must look far
    far = (metric.value(deep), deep.seq)
    reads = {
        "newest page": lambda: store.page("run", limit=51),
        "backend id prefix": lambda: store.page("run", search=(deep.backend_run_id or "")[:16], limit=51),
        "exact experiment": lambda: store.page("run", search="bench", limit=51),
        "no match": lambda: store.page("run", search="nothing-like-it", limit=51),
        "sorted by duration": lambda: store.page("run", order=Order("duration"), limit=51),
        "sorted by a metric": lambda: store.page("run", order=metric, limit=51),
        "a metric, far down": lambda: store.page("run", order=metric, after=far, limit=51),
        "filter: experiment": lambda: store.page("run", experiment="bench", limit=51),
        "filter: a parameter": lambda: store.page("run", with_params={"seed": "3"}, limit=51),
        "sorted by a parameter": lambda: store.page("run", order=Order("param", metric="estimators"), limit=51),
        "run name search": lambda: store.page("run", search="nightly-baseline", limit=51),
        # what each replica does every few seconds, whatever the page: look for jobs to take over
        "claim (a replica)": lambda: asyncio.run(store.write(claim)),
        "retention candidates": lambda: store.expired(TERMINAL_NAMES, ended_before=0.0),
    }
    return {name: median_ms(read, tries) for name, read in reads.items()}


def migration(store: JobStore, url: str) -> dict[str, float]:
    """Seconds the upgrade from 0007 to the newest revision took (0008 fills the columns; 0009 adds two empty
    ones), and the longest a read and a write waited while it ran."""
    store.close()
    downgrade(url, "0007")
    waits = {"read": 0.0, "write": 0.0}
    done = threading.Event()

    def probe(kind: str, step: Callable[[], object]) -> None:
        while not done.is_set():
            started = time.perf_counter()
            with contextlib.suppress(Exception):  # the table is being altered: that wait counts, an error not
                step()
            waits[kind] = max(waits[kind], time.perf_counter() - started)
            time.sleep(0.05)

    def read() -> object:
        if url.startswith("sqlite"):
            with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=600) as db:
                return db.execute("SELECT id, status FROM jobs ORDER BY seq DESC LIMIT 51").fetchall()
        with psycopg.connect(url) as db:
            return db.execute("SELECT id, status FROM jobs ORDER BY seq DESC LIMIT 51").fetchall()

    def write() -> object:
        sql = "UPDATE jobs SET callback_status = NULL WHERE seq = (SELECT MAX(seq) FROM jobs)"
        if url.startswith("sqlite"):
            with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=600) as db:
                return db.execute(sql)
        with psycopg.connect(url) as db:
            return db.execute(sql)

    threads = [threading.Thread(target=probe, args=(k, f), daemon=True) for k, f in (("read", read), ("write", write))]
    time.sleep(0.2)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    upgrade(url)
    took = time.perf_counter() - started
    done.set()
    for thread in threads:
        thread.join(timeout=600)
    return {"upgrade": took, **waits}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=10_000, help="the same reads at this many runs, beside")
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--migrate", action="store_true", help="time the upgrade 0007 → newest of the big stores")
    parser.add_argument("--database-url", help="PostgreSQL to use (default: a throw-away server)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-reads-"))
    sizes = {"base": args.baseline, "big": args.runs}
    found: dict[tuple[str, str], dict[str, float]] = {}
    loads: dict[tuple[str, str], float] = {}
    moved: dict[str, dict[str, float]] = {}
    try:
        with databases(args.database_url, 2) as urls:
            places = {
                ("SQLite", "base"): f"sqlite:///{folder / 'base.sqlite'}",
                ("SQLite", "big"): f"sqlite:///{folder / 'big.sqlite'}",
                ("PostgreSQL", "base"): urls[0],
                ("PostgreSQL", "big"): urls[1],
            }
            for (database, size), url in places.items():
                store: JobStore = (
                    SqliteStore(Path(url.removeprefix("sqlite:///"))) if database == "SQLite" else PostgresStore(url)
                )
                try:
                    loads[(database, size)] = fill(store, sizes[size])
                    if database == "PostgreSQL":  # what autovacuum does soon after a bulk load
                        with psycopg.connect(url, autocommit=True) as db:
                            db.execute("ANALYZE")
                    found[(database, size)] = figures(store, sizes[size], args.tries)
                finally:
                    if args.migrate and size == "big":
                        moved[database] = migration(store, url)
                    else:
                        store.close()
        big, base = f"{args.runs:,}", f"{args.baseline:,}"
        print(f"\njob store reads, median ms of {args.tries} (goal: each ≤ 20 ms at 1,000,000 runs):")
        print(f"  {'read':22} {'SQLite ' + base:>14} {'SQLite ' + big:>16} {'PG ' + base:>12} {'PG ' + big:>14}")
        for read in found[("SQLite", "base")]:
            row = [found[(db, size)][read] for db in ("SQLite", "PostgreSQL") for size in ("base", "big")]
            print(f"  {read:22} {row[0]:14.1f} {row[1]:16.1f} {row[2]:12.1f} {row[3]:14.1f}")
        print("  loading (s, bulk)     " + "  ".join(f"{db} {size}: {loads[(db, size)]:.1f}" for db, size in loads))
        for database, took in moved.items():
            print(
                f"  upgrade 0007 → newest of {big} runs on {database}: {took['upgrade']:.1f} s; "
                f"a read waited at most {took['read']:.2f} s, a write {took['write']:.2f} s"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
