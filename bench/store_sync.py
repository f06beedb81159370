"""What synchronous=FULL (fsync at every commit) costs POST /runs, beside NORMAL, in turns in one run.

    python -m bench.store_sync [--seconds 1] [--rounds 2]

Each POST starts a real (instant) training run, so each burst is followed by a drain. Target
(issue 11): p99 ≤ 50 ms at 16 connections with FULL. Needs wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import shutil
import time

import httpx

from bench.api_latency import drain, post_script, wrk
from bench.common import service_env, start_uvicorn, stop, workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (a smoke run uses 2)")
    parser.add_argument("--most-runs", type=int, help="stop each POST burst after this many (smoke runs)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    work = workspace("bench-sync-")
    (work / "post.lua").write_text(post_script(args.most_runs))
    services, urls = {}, {}
    try:
        for mode in ("full", "normal"):
            env = service_env(work, mode, AZML_COMPUTE_MAX_NODES="8", AZML_DB_SYNCHRONOUS=mode)
            services[mode], urls[mode] = start_uvicorn("service.app:app", env)
            with httpx.Client(base_url=urls[mode], timeout=60) as http:
                http.post("/data", params={"wait": 30}, json={"data_dir": "data"}).raise_for_status()
        figures: dict[str, list[dict]] = {"full": [], "normal": []}
        for _ in range(args.rounds):
            for mode in ("full", "normal"):
                figures[mode].append(
                    wrk(f"{urls[mode]}/runs", args.seconds, script=work / "post.lua", connections=args.connections)
                )
                started = time.monotonic()
                drain(urls[mode])
                print(f"  {mode}: {figures[mode][-1]['count']} runs drained in {time.monotonic() - started:.0f} s")
        print(f"\nPOST /runs, {args.connections} connections, {args.seconds} s bursts (each request starts a run):")
        for mode, rows in figures.items():
            p50s, p99s = [f"{r['p50']:.1f}" for r in rows], [f"{r['p99']:.1f}" for r in rows]
            print(f"  synchronous={mode.upper():6} p50 {', '.join(p50s)} ms   p99 {', '.join(p99s)} ms  [p99 ≤ 50]")
    finally:
        for proc in services.values():
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
