"""Helpers the benchmarks share: start a uvicorn app on a free port, read a process's memory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_uvicorn(
    app: str, env: dict[str, str], *, health: str = "/healthz", log_file: Path | None = None
) -> tuple[subprocess.Popen, str]:
    """One uvicorn worker with uvloop and httptools, as the service is meant to be run (its lines to log_file)."""
    port = free_port()
    log = log_file.open("ab") if log_file else None
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--no-proxy-headers",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        # no access lines unless asked for, like the bare app beside it (bench.feature_cost measures them)
        env={**os.environ, "AZML_ACCESS_LOG": "false", **env, "PYTHONPATH": str(ROOT)},
        stdout=log,
        stderr=log,
    )
    if log:
        log.close()  # the child has its own copy
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(url + health, timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{app} did not start")


def workspace(prefix: str) -> Path:
    """A temp folder holding training/quick.py (an instant script) and data/a.csv, for services to run on."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    (work / "training").mkdir()
    (work / "training" / "quick.py").write_text("import os\nos.makedirs('outputs', exist_ok=True)\n")
    (work / "data").mkdir()
    (work / "data" / "a.csv").write_text("a\n")
    return work


def service_env(work: Path, home: str, **extra: str) -> dict[str, str]:
    """The service's settings for a benchmark: state in work/home, no run import, data from work/data."""
    return {
        "AZML_HOME": str(work / home),
        "AZML_TRAINING_DIR": str(work / "training"),
        "AZML_DATAPATH": "d",
        "AZML_EXPERIMENT": "bench",
        "AZML_MODEL": "bench-model",
        "AZML_COMPUTE_NAME": "bench",
        "AZML_DATA_ROOT": str(work),
        "AZML_RUN_IMPORT_SECONDS": "0",
        **extra,
    }


def memory_kib(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
