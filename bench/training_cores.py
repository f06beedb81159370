"""Training on every core: the crime training direct and through the control plane, in one run.

    python -m bench.training_cores [--rows 1000000] [--estimators 120]

Prints the script's own time run directly with --jobs 1 (as the scripts used to pin) and with
--jobs -1 (best of two), then through the local backend (AZML_COMPUTE_MAX_NODES=1: one run may
use the whole machine), timed from the runner starting the script to its end. Target (issue 11):
the control plane within 1.05× of the best direct run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amllib.backends.base import RunSpec, RunStatus
from amllib.backends.local import LocalBackend
from amllib.settings import REPO_ROOT, Settings

SCRIPT = "scikit-batcomputer.py"


def direct(data: Path, estimators: int, jobs: int, work: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "training" / SCRIPT),
            "--data-path",
            str(data),
            "--estimators",
            str(estimators),
            "--jobs",
            str(jobs),
        ],
        cwd=work,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def through_control_plane(data: Path, estimators: int, work: Path) -> float:
    settings = Settings(_env_file=None, home=work / "aml", compute_max_nodes=1)
    backend = LocalBackend(settings)
    backend.upload_data(data, target_path="crime")
    run_id = backend.submit_run(
        RunSpec(script=SCRIPT, experiment="bench", datapath="crime", compute="local", estimators=estimators)
    )
    info = backend.wait_for_run(run_id, timeout=3600, poll=0.5)
    if info.status != RunStatus.COMPLETED:
        raise SystemExit(backend.get_log(run_id))
    state = json.loads((backend.compute.run_dir(run_id) / "state.json").read_text())
    return state["finished_at"] - state["started_at"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--estimators", type=int, default=120)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cores-"))
    try:
        data = work / "crime"
        subprocess.run(
            [
                sys.executable,
                str(REPO_ROOT / "scripts" / "generate-crime-data.py"),
                "--rows",
                str(args.rows),
                "--out",
                str(data),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        pinned = direct(data, args.estimators, 1, work)
        best = min(direct(data, args.estimators, -1, work) for _ in range(2))
        plane = through_control_plane(data, args.estimators, work)
        print(f"\n{args.rows:,} crime rows, {args.estimators} trees:")
        print(f"  direct, --jobs 1 (the old pin): {pinned:6.1f} s")
        print(f"  direct, --jobs -1 (best of 2):  {best:6.1f} s")
        print(
            f"  through the control plane:      {plane:6.1f} s = {plane / best:.2f}× the best direct   [target ≤ 1.05×]"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
