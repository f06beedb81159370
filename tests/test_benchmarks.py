"""Every benchmark in bench/ runs, at tiny sizes, so none can rot unseen (figures are not asserted here).

The figures themselves come from full-size runs (README, Benchmarks); these only show each bench
still starts, drives the service and prints its lines.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from amllib.settings import REPO_ROOT

SMOKE = {
    "alias_fetch": (["--versions", "5", "--history", "10", "--tries", "3"], "alias adds"),
    "azure_requests": (["--history", "150", "--reads", "5"], "listSecrets"),
    "api_latency": (
        ["--seconds", "1", "--post-seconds", "1", "--post-connections", "2", "--most-runs", "20"],
        "submit → training process",
    ),
    "dashboard": (["--runs", "30", "--seconds", "1", "--compared", "3", "--points", "50"], "compare page, drawn"),
    "endpoint_predict": (["--seconds", "1", "--estimators", "5", "--connections", "2"], "non-2xx"),
    "feature_cost": (["--seconds", "1", "--rounds", "1"], "GET /runs/{id}: metrics on"),
    "poll_budget": (["--runs", "10", "--seconds", "4"], "reads/min"),
    "replicas": (
        ["--seconds", "1", "--post-seconds", "1", "--connections", "2", "--events", "3", "--most-runs", "20"],
        "event fan-out",
    ),
    "store_reads": (["--runs", "300", "--baseline", "100", "--tries", "2", "--migrate"], "upgrade 0007 → newest"),
    "store_sync": (["--seconds", "1", "--rounds", "1", "--connections", "2", "--most-runs", "20"], "synchronous=FULL"),
    "training_cores": (["--rows", "2000", "--estimators", "4"], "through the control plane"),
    "upload_throughput": (["--size-mib", "4", "--files", "4", "--rounds", "1"], "of the bare endpoint"),
}


def test_every_bench_has_a_smoke_run() -> None:
    benches = {p.stem for p in (REPO_ROOT / "bench").glob("*.py")} - {"__init__", "common", "bare_app"}
    assert benches == set(SMOKE)


@pytest.mark.parametrize("bench", sorted(SMOKE))
def test_a_bench_runs_at_tiny_sizes(bench: str) -> None:
    args, expected = SMOKE[bench]
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{bench}", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert expected in done.stdout, done.stdout[-2000:]
