"""GET /runs/{id} throughput beside a bare FastAPI endpoint; POST /runs latency; submit → process start.

    python -m bench.api_latency [--seconds 10] [--post-seconds 2] [--access-log]

Needs `wrk` (apt-get install wrk): a C load generator, so the client does not eat the
2 cores the server runs on. Both servers are one uvicorn worker with uvloop and
httptools, measured in the same run, so the ratio holds on a noisy machine. Targets
(issue 3): GET ≥ 3,000 req/s with p99 < 20 ms at 16 connections; POST /runs p99 ≤ 50 ms
at 16 concurrent clients; submit → training process started < 1 s. Issue 31: GET /runs/{id} ≥ 0.70 of
the bare endpoint with metrics and the access log on (`--access-log`: a line per request, to a file).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import start_uvicorn, stop

QUICK_SCRIPT = "import os\nos.makedirs('outputs', exist_ok=True)\nopen('outputs/m.txt', 'w').write('m')\n"
SLEEP_SCRIPT = "import time\ntime.sleep(30)\n"
POST_SCRIPT = (
    'wrk.method = "POST"\nwrk.body = \'{"script": "quick.py"}\'\nwrk.headers["Content-Type"] = "application/json"\n'
)


def post_script(most_runs: int | None = None) -> str:
    """wrk's script for POST /runs; with most_runs, each of wrk's two threads stops after half of them
    (every POST starts a run that must be drained: a smoke run needs a handful, not a second's worth)."""
    if most_runs is None:
        return POST_SCRIPT
    cap = "local answered = 0\nfunction response(status, headers, body)\n  answered = answered + 1\n"
    cap += f"  if answered >= {max(1, most_runs // 2)} then wrk.thread:stop() end\nend\n"
    return POST_SCRIPT + cap


def _latency(out: str, label: str) -> float:
    value, unit = re.search(label + r"\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, seconds: int, *, script: Path | None = None, connections: int = 16) -> dict[str, float]:
    """Requests/s, request count, p50 and p99 (ms) at 16 connections (fewer for a smoke run)."""
    command = ["wrk", "-t2", f"-c{max(2, connections)}", f"-d{seconds}s", "--latency", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return {
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "count": int(re.search(r"(\d+) requests in", out).group(1)),
        "p50": _latency(out, "50%"),
        "p99": _latency(out, "99%"),
    }


def drain(url: str) -> None:
    """Wait until no run is queued or running, so the next figure is not measured under that load."""
    with httpx.Client(base_url=url, timeout=60) as http:
        while any(http.get("/runs", params={"status": s, "limit": 1}).json()["items"] for s in ("Queued", "Running")):
            time.sleep(1)


def submit_to_start(url: str, home: Path, count: int = 5) -> list[float]:
    """Seconds from POST /runs to the training process starting (the runner's record)."""
    delays = []
    with httpx.Client(base_url=url, timeout=60) as http:
        for _ in range(count):
            posted = time.time()
            job = http.post("/runs", json={"script": "quick.py"}).json()
            done = http.get(f"/runs/{job['id']}", params={"wait": 60}).json()
            state = json.loads((home / "runs" / done["backend_run_id"] / "state.json").read_text())
            delays.append(state["started_at"] - posted)
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--post-seconds", type=int, default=2, help="every POST starts a real run: keep it short")
    parser.add_argument("--post-connections", type=int, default=16, help="wrk connections for POST (a smoke run: 2)")
    parser.add_argument("--most-runs", type=int, help="stop each POST burst after this many (smoke runs)")
    parser.add_argument("--access-log", action="store_true", help="the service writes its access log (to a file)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    training = work / "training"
    training.mkdir()
    (training / "quick.py").write_text(QUICK_SCRIPT)
    (training / "sleep.py").write_text(SLEEP_SCRIPT)
    (work / "data").mkdir()
    (work / "data" / "a.csv").write_text("a\n")
    (work / "post.lua").write_text(post_script(args.most_runs))
    env = {
        "AZML_HOME": str(work / "aml"),
        "AZML_TRAINING_DIR": str(training),
        "AZML_DATAPATH": "d",
        "AZML_EXPERIMENT": "bench",
        "AZML_MODEL": "bench-model",
        "AZML_COMPUTE_NAME": "bench",
        "AZML_COMPUTE_MAX_NODES": "2",
        "AZML_DATA_ROOT": str(work),
    }
    bare, bare_url = start_uvicorn("bench.bare_app:app", {"BENCH_DB": str(work / "bare.sqlite")})
    if args.access_log:
        env["AZML_ACCESS_LOG"] = "true"
    service, url = start_uvicorn("service.app:app", env, log_file=work / "service.log" if args.access_log else None)
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            http.post("/data", params={"wait": 30}, json={"data_dir": "data"}).raise_for_status()
            job = http.post("/runs", params={"wait": 60}, json={"script": "quick.py"}).json()
        rows = [
            ("bare FastAPI constant", wrk(bare_url + "/const", args.seconds)),
            ("bare FastAPI + 1 SQLite row", wrk(bare_url + "/row", args.seconds)),
            ("GET /runs/{id}", wrk(f"{url}/runs/{job['id']}", args.seconds)),
        ]
        with httpx.Client(base_url=url, timeout=60) as http:
            busy = [http.post("/runs", json={"script": "sleep.py"}).json()["id"] for _ in range(2)]
            time.sleep(2)
            rows.append(("GET /runs/{id}, 2 runs training", wrk(f"{url}/runs/{job['id']}", args.seconds)))
            for run_id in busy:
                http.post(f"/runs/{run_id}/cancel")
        print(f"\n{'endpoint':36} {'req/s':>9} {'p99 ms':>8} {'vs bare':>8}")
        for name, figures in rows:
            print(f"{name:36} {figures['rate']:9.0f} {figures['p99']:8.2f} {figures['rate'] / rows[0][1]['rate']:8.0%}")
        drain(url)
        post = wrk(f"{url}/runs", args.post_seconds, script=work / "post.lua", connections=args.post_connections)
        print(
            f"\nPOST /runs, 16 connections, {args.post_seconds} s: {post['count']} runs submitted, "
            f"p50 {post['p50']:.1f} ms, p99 {post['p99']:.1f} ms"
        )
        drain(url)
        delays = submit_to_start(url, work / "aml")
        print(f"submit → training process started: {', '.join(f'{d * 1000:.0f} ms' for d in delays)}")
    finally:
        stop(service)
        stop(bare)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
