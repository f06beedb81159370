"""What /metrics costs the hot path: GET /runs/{id} with metrics on beside metrics off, in one run.

    python -m bench.metrics_cost [--seconds 6] [--rounds 3]

Two services on the same data, measured in turns (on, off, on, off, …) so machine noise falls
on both alike; the figure is the ratio of the medians. Target (issue 11): ≥ 95 %.
Needs wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import shutil
import statistics

import httpx

from bench.api_latency import wrk
from bench.common import service_env, start_uvicorn, stop, workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    work = workspace("bench-metrics-")
    services, targets = {}, {}
    try:
        for mode in ("on", "off"):
            env = service_env(work, mode, AZML_METRICS="true" if mode == "on" else "false")
            services[mode], url = start_uvicorn("service.app:app", env)
            with httpx.Client(base_url=url, timeout=60) as http:
                http.post("/data", params={"wait": 30}, json={"data_dir": "data"}).raise_for_status()
                job = http.post("/runs", params={"wait": 60}, json={"script": "quick.py"}).json()
            targets[mode] = f"{url}/runs/{job['id']}"
        rates: dict[str, list[float]] = {"on": [], "off": []}
        for _ in range(args.rounds):
            for mode in ("on", "off"):
                rates[mode].append(wrk(targets[mode], args.seconds)["rate"])
        on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
        print(f"\nGET /runs/{{id}}: metrics on {on:.0f} req/s, off {off:.0f} req/s: {on / off:.1%}   [target ≥ 95 %]")
        print(f"rounds: on {[round(r) for r in rates['on']]}, off {[round(r) for r in rates['off']]}")
    finally:
        for proc in services.values():
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
