"""GET /runs/{id} throughput and latency beside a bare FastAPI endpoint; POST /runs latency; submit → start.

    python bench/api_latency.py [--seconds 10] [--posts 320]

Needs `wrk` (apt-get install wrk) for the GET figures. Both servers are one uvicorn
worker with uvloop and httptools on this machine, measured in the same run, so the
ratio holds on a noisy machine. Targets (issue 3): GET ≥ 3,000 req/s with p99 < 20 ms at
16 connections; POST /runs p99 ≤ 50 ms at 16 concurrent clients; submit → training
process started < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import ROOT, start_uvicorn, stop

QUICK_SCRIPT = "import os\nos.makedirs('outputs', exist_ok=True)\nopen('outputs/m.txt', 'w').write('m')\n"
SLEEP_SCRIPT = "import time\ntime.sleep(30)\n"


def wrk(url: str, seconds: int) -> tuple[float, float]:
    """Requests/s and p99 in ms at 16 connections on 2 threads."""
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", url], capture_output=True, text=True, check=True
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    return rate, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def post_latencies(url: str, total: int, concurrency: int = 16) -> list[float]:
    latencies: list[float] = []
    counter = iter(range(total))

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            for _ in counter:
                start = time.perf_counter()
                response = await http.post("/runs", json={"script": "quick.py"})
                latencies.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 202, response.text

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return sorted(latencies)


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(share * len(values)))]


def submit_to_start(url: str, home: Path, count: int = 5) -> list[float]:
    """Seconds from POST /runs to the training process starting (the runner's record)."""
    delays = []
    with httpx.Client(base_url=url, timeout=30) as http:
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
    parser.add_argument("--posts", type=int, default=320)
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
    service, url = start_uvicorn("service.app:app", env)
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            http.post("/data", params={"wait": 30}, json={"data_dir": "data"}).raise_for_status()
            job = http.post("/runs", params={"wait": 60}, json={"script": "quick.py"}).json()
        rows = [
            ("bare FastAPI constant", *wrk(bare_url + "/const", args.seconds)),
            ("bare FastAPI + 1 SQLite row", *wrk(bare_url + "/row", args.seconds)),
            ("GET /runs/{id}", *wrk(f"{url}/runs/{job['id']}", args.seconds)),
        ]
        with httpx.Client(base_url=url, timeout=60) as http:
            busy = [http.post("/runs", json={"script": "sleep.py"}).json()["id"] for _ in range(2)]
            time.sleep(2)
            rows.append(("GET /runs/{id}, 2 runs training", *wrk(f"{url}/runs/{job['id']}", args.seconds)))
            for run_id in busy:
                http.post(f"/runs/{run_id}/cancel")
        print(f"\n{'endpoint':36} {'req/s':>9} {'p99 ms':>8} {'vs bare':>8}")
        for name, rate, p99 in rows:
            print(f"{name:36} {rate:9.0f} {p99:8.2f} {rate / rows[0][1]:8.0%}")
        posts = asyncio.run(post_latencies(url, args.posts))
        print(
            f"\nPOST /runs x{args.posts}, 16 concurrent: p50 {percentile(posts, 0.5):.1f} ms, "
            f"p99 {percentile(posts, 0.99):.1f} ms, max {posts[-1]:.1f} ms"
        )
        with httpx.Client(base_url=url, timeout=60) as http:  # let the burst of runs drain first
            while (
                http.get("/runs", params={"status": "Queued"}).json()["items"]
                or http.get("/runs", params={"status": "Running"}).json()["items"]
            ):
                time.sleep(1)
        delays = submit_to_start(url, work / "aml")
        print(f"submit → training process started: {', '.join(f'{d * 1000:.0f} ms' for d in delays)}")
    finally:
        stop(service)
        stop(bare)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(ROOT))
    main()
