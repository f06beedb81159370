"""The job store on PostgreSQL beside SQLite, and two replicas behind a round-robin client, in one run.

    python -m bench.replicas [--seconds 5] [--post-seconds 2] [--events 50] [--database-url URL]

Figures (issue 19 goals in brackets): POST /runs p50/p99 at 16 connections [PostgreSQL p99 ≤ 50 ms];
GET /runs/{id} req/s [PostgreSQL ≥ 0.8 of SQLite]; the same with two replicas on one PostgreSQL,
each loaded by its own wrk at half the connections (a round-robin client); and how long a change
made through one replica takes to reach an /events stream held on the other [p99 ≤ 500 ms].
PostgreSQL: --database-url (a database the bench may fill), else a throw-away server as the tests
start one (tests/postgres.py). Needs wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.api_latency import drain, post_script, wrk
from bench.common import service_env, start_uvicorn, stop, workspace


@contextlib.contextmanager
def databases(given: str | None, count: int) -> Iterator[list[str]]:
    from tests import postgres

    with contextlib.ExitStack() as stack:
        admin = given or stack.enter_context(postgres.server())
        yield [stack.enter_context(postgres.database(admin)) for _ in range(count)]


def fan_out(sender: str, receiver: str, count: int) -> list[float]:
    """Seconds from a POST /data answered by `sender` to its first event on a stream held on `receiver`."""
    arrived: dict[str, float] = {}
    ready = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", receiver + "/events", timeout=60) as stream:
            ready.set()
            for line in stream.iter_lines():
                if line.startswith("data: ") and '"id":"data_' in line.replace(" ", ""):
                    job_id = line.split('"id":', 1)[1].split('"')[1]
                    arrived.setdefault(job_id, time.monotonic())
                if len(arrived) >= count:
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    ready.wait(10)
    time.sleep(0.5)
    delays = []
    with httpx.Client(base_url=sender, timeout=60) as http:
        for _ in range(count):
            sent = time.monotonic()
            job_id = http.post("/data", json={"data_dir": "data"}).json()["id"]
            deadline = time.monotonic() + 5
            while job_id not in arrived and time.monotonic() < deadline:
                time.sleep(0.002)
            delays.append(arrived.get(job_id, float("inf")) - sent)
            time.sleep(0.05)
    return delays


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--post-seconds", type=int, default=2, help="every POST starts a real run: keep it short")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (a smoke run uses 2)")
    parser.add_argument("--most-runs", type=int, help="stop each POST burst after this many (smoke runs)")
    parser.add_argument("--events", type=int, default=50, help="changes timed from one replica to the other")
    parser.add_argument("--database-url", help="PostgreSQL to use (default: a throw-away server)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    work = workspace("bench-replicas-")
    (work / "post.lua").write_text(post_script(args.most_runs))
    procs: list[subprocess.Popen] = []
    try:
        with databases(args.database_url, 2) as (single_db, shared_db):
            urls = {}
            for name, extra in (
                ("SQLite", {}),
                ("PostgreSQL", {"AZML_DB_URL": single_db}),
                ("replica A", {"AZML_DB_URL": shared_db}),
                ("replica B", {"AZML_DB_URL": shared_db}),
            ):
                home = "shared" if name.startswith("replica") else name
                proc, urls[name] = start_uvicorn(
                    "service.app:app", service_env(work, home, AZML_COMPUTE_MAX_NODES="8", **extra)
                )
                procs.append(proc)
            run_ids = {}
            for name in ("SQLite", "PostgreSQL", "replica A"):
                with httpx.Client(base_url=urls[name], timeout=60) as http:
                    http.post("/data", params={"wait": 30}, json={"data_dir": "data"}).raise_for_status()
                    run_ids[name] = http.post("/runs", params={"wait": 60}, json={"script": "quick.py"}).json()["id"]
            reads = {}
            for name in ("SQLite", "PostgreSQL"):  # in turns, twice, so both see the same machine
                for _ in range(2):
                    reads.setdefault(name, []).append(
                        wrk(f"{urls[name]}/runs/{run_ids[name]}", args.seconds, connections=args.connections)
                    )
            half = max(2, args.connections // 2)
            with ThreadPoolExecutor(2) as pool:
                both = list(
                    pool.map(
                        lambda name: wrk(f"{urls[name]}/runs/{run_ids['replica A']}", args.seconds, connections=half),
                        ("replica A", "replica B"),
                    )
                )
            posts = {}
            for name in ("SQLite", "PostgreSQL"):
                posts[name] = wrk(
                    f"{urls[name]}/runs", args.post_seconds, script=work / "post.lua", connections=args.connections
                )
                drain(urls[name])
            with ThreadPoolExecutor(2) as pool:
                post_both = list(
                    pool.map(
                        lambda name: wrk(
                            f"{urls[name]}/runs", args.post_seconds, script=work / "post.lua", connections=half
                        ),
                        ("replica A", "replica B"),
                    )
                )
            drain(urls["replica A"])
            delays = fan_out(urls["replica A"], urls["replica B"], args.events)
            for proc in procs:
                stop(proc)

        best = {name: max(r["rate"] for r in rows) for name, rows in reads.items()}
        print(f"\nGET /runs/{{id}}, {args.connections} connections, {args.seconds} s, best of 2 in turns:")
        for name in ("SQLite", "PostgreSQL"):
            p99 = min(r["p99"] for r in reads[name])
            print(f"  {name:12} {best[name]:8.0f} req/s   p99 {p99:6.2f} ms")
        print(f"  PostgreSQL / SQLite: {best['PostgreSQL'] / best['SQLite']:.2f}   [≥ 0.8]")
        rate = sum(r["rate"] for r in both)
        print(
            f"  2 replicas, one PostgreSQL, round-robin: {rate:8.0f} req/s in all   "
            f"p99 {max(r['p99'] for r in both):6.2f} ms"
        )
        print(f"\nPOST /runs, {args.connections} connections, {args.post_seconds} s (each request starts a run):")
        for name, figures in posts.items():
            goal = "   [p99 ≤ 50]" if name == "PostgreSQL" else ""
            print(f"  {name:12} p50 {figures['p50']:6.1f} ms   p99 {figures['p99']:6.1f} ms{goal}")
        print(
            f"  2 replicas, round-robin: p50 {max(r['p50'] for r in post_both):6.1f} ms   "
            f"p99 {max(r['p99'] for r in post_both):6.1f} ms   ({sum(r['count'] for r in post_both)} runs)"
        )
        millis = [d * 1000 for d in delays]
        print(
            f"\nevent fan-out, replica A → a stream on replica B, {len(millis)} changes: "
            f"p50 {statistics.median(millis):.0f} ms   p99 {percentile(millis, 0.99):.0f} ms   [p99 ≤ 500]"
        )
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
