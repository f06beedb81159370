"""What an optional feature costs the hot path: GET /runs/{id} with it on beside off, in one run.

    python -m bench.feature_cost [--feature metrics|access-log|json-log] [--seconds 6] [--rounds 3]

Two services on the same data, measured in turns (on, off, on, off, …) so machine noise falls
on both alike; the figure is the ratio of the medians. Services log to a file, as in production.
Targets: metrics ≥ 95 % (issue 11); the access log and JSON lines are reported, not targeted.
Needs wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import shutil
import statistics

import httpx

from bench.api_latency import wrk
from bench.common import service_env, start_uvicorn, stop, workspace

# feature → (settings when on, settings when off)
FEATURES = {
    "metrics": ({"AZML_METRICS": "true"}, {"AZML_METRICS": "false"}),
    "access-log": ({"AZML_ACCESS_LOG": "true"}, {"AZML_ACCESS_LOG": "false"}),
    "json-log": (
        {"AZML_ACCESS_LOG": "true", "AZML_LOG_FORMAT": "json"},
        {"AZML_ACCESS_LOG": "true", "AZML_LOG_FORMAT": "text"},
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feature", choices=sorted(FEATURES), default="metrics")
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    work = workspace("bench-feature-")
    services, targets = {}, {}
    try:
        for mode, settings in zip(("on", "off"), FEATURES[args.feature], strict=True):
            env = service_env(work, mode, **settings)
            services[mode], url = start_uvicorn("service.app:app", env, log_file=work / f"{mode}.log")
            with httpx.Client(base_url=url, timeout=60) as http:
                http.post("/data", params={"wait": 30}, json={"data_dir": "data"}).raise_for_status()
                job = http.post("/runs", params={"wait": 60}, json={"script": "quick.py"}).json()
            targets[mode] = f"{url}/runs/{job['id']}"
        rates: dict[str, list[float]] = {"on": [], "off": []}
        for _ in range(args.rounds):
            for mode in ("on", "off"):
                rates[mode].append(wrk(targets[mode], args.seconds)["rate"])
        on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
        print(f"\nGET /runs/{{id}}: {args.feature} on {on:.0f} req/s, off {off:.0f} req/s: {on / off:.1%}")
        print(f"rounds: on {[round(r) for r in rates['on']]}, off {[round(r) for r in rates['off']]}")
    finally:
        for proc in services.values():
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
