"""Executor of one local run, detached from whoever submitted it (stdlib only, starts fast).

    python -m amllib.backends.local_runner RUN_DIR

Reads RUN_DIR/run.json, waits in the compute queue for a free slot (a flock on
one of max_nodes slot files, so the limit holds across every process on the
machine), runs the training script with its output in RUN_DIR/driver.log, and
records status, exit code and times in RUN_DIR/state.json. It runs in its own
session, so it outlives the service or script that started it; the result stays
on disk for whoever asks later.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from amllib.backends.mlflow_files import tracking_env

POLL = 0.1
MAX_QUEUED_POLL = 5.0
START_GRACE = 60.0  # a queue entry with no runner pid yet counts as waiting for this long
CAPTURE_DIR = Path(__file__).resolve().parent / "local_capture"
_AZURE_RUN_VARS = ("AZUREML_RUN_ID", "AZUREML_RUN_TOKEN", "AZUREML_SERVICE_ENDPOINT")
# What joblib (n_jobs=-1), OpenMP and the BLAS libraries read to know how many cores they may use.
CORE_VARS = ("LOKY_MAX_CPU_COUNT", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def core_share(max_nodes: int) -> int:
    """The cores one run may use when max_nodes runs share this machine: all of them for a lone node."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(1, max_nodes))


def write_state(run_dir: Path, **fields: object) -> None:
    """Merge fields into state.json, replacing the file atomically."""
    path = run_dir / "state.json"
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        state = {}
    state.update(fields)
    tmp = run_dir / f".state.{os.getpid()}.{threading.get_ident()}.tmp"  # threads of one process write too
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def pid_alive(pid: int) -> bool:
    """True for a live process; a zombie (exited, not yet reaped) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            if handle.read().rsplit(")", 1)[-1].split()[0] == "Z":
                return False
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def queue_entry(spec: dict) -> Path:
    """The run's place in its compute's queue; the submitter creates it, in submit order."""
    return Path(spec["compute_dir"]) / "queue" / f"{spec['queued_ns']:020d}-{spec['run_id']}"


def _younger_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime < seconds
    except OSError:
        return False


def _runs_ahead(queue_dir: Path, entry: Path) -> int:
    """How many runs are queued before ours; 0 once every one ahead has started or died.

    Only the nearest entry ahead is checked (and removed if its runner died), so a poll costs
    one directory listing and one file read however long the queue is.
    """
    ahead = sorted(name for name in os.listdir(queue_dir) if name < entry.name)
    while ahead:
        nearest = queue_dir / ahead[-1]
        try:
            pid = int(nearest.read_text() or 0)
        except (OSError, ValueError):
            pid = 0
        if pid and pid_alive(pid):
            return len(ahead)
        if not pid and _younger_than(nearest, START_GRACE):
            return len(ahead)  # submitted, its runner not started yet
        nearest.unlink(missing_ok=True)
        ahead.pop()
    return 0


def acquire_slot(spec: dict, run_dir: Path, stopping: Callable[[], bool]) -> int | None:
    """Wait for a compute slot in submit order; None if the run is canceled or stopped while queued.

    Only the head of the queue tries the slots; the others look again after a time that grows with
    their place in the queue, so hundreds of queued runs cost little.
    """
    compute_dir = Path(spec["compute_dir"])
    entry = queue_entry(spec)
    queue_dir = entry.parent
    queue_dir.mkdir(parents=True, exist_ok=True)
    entry.write_text(str(os.getpid()))
    try:
        while not (run_dir / "cancel").exists() and not stopping():
            ahead = _runs_ahead(queue_dir, entry)
            if ahead == 0:
                for index in range(int(spec["max_nodes"])):
                    fd = os.open(compute_dir / f"slot-{index}.lock", os.O_RDWR | os.O_CREAT, 0o644)
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        return fd
                    except BlockingIOError:
                        os.close(fd)
            time.sleep(min(MAX_QUEUED_POLL, POLL * (1 + ahead)))
        return None
    finally:
        entry.unlink(missing_ok=True)


def child_env(spec: dict, run_dir: Path) -> dict[str, str]:
    """The script's environment: metrics capture on PYTHONPATH, no stray Azure run identity."""
    env = {k: v for k, v in os.environ.items() if k not in _AZURE_RUN_VARS and not k.startswith("AZUREML_ARM_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CAPTURE_DIR), env.get("PYTHONPATH", "")]))
    env["AZML_LOCAL_METRICS_FILE"] = str(run_dir / "metrics.jsonl")
    env["AZML_LOCAL_RUN_ID"] = spec["run_id"]
    env["PYTHONUNBUFFERED"] = "1"
    env.update(tracking_env(run_dir, spec["experiment"]))  # MLflow logging lands in the run folder
    share = str(core_share(int(spec.get("max_nodes", 1))))
    for name in CORE_VARS:  # so parallel runs don't oversubscribe the machine; a value set by hand wins
        env.setdefault(name, share)
    return env


def execute(run_dir: Path) -> int:
    spec = json.loads((run_dir / "run.json").read_text())
    owner = os.open(run_dir / "runner.lock", os.O_RDWR | os.O_CREAT, 0o644)  # held until this process ends
    try:
        fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another runner has this run (a relaunch raced the first launch)
    if json.loads((run_dir / "state.json").read_text()).get("status") != "Queued":
        return 0  # it ran already
    (run_dir / "runner.pid").write_text(str(os.getpid()))
    stop = {"requested": False}

    def on_term(signum: int, frame: object) -> None:
        stop["requested"] = True

    signal.signal(signal.SIGTERM, on_term)
    slot = acquire_slot(spec, run_dir, lambda: stop["requested"])
    if slot is None or stop["requested"]:
        write_state(run_dir, status="Canceled", finished_at=time.time(), error="canceled while queued")
        return 0
    with (run_dir / "driver.log").open("ab") as log:
        child = subprocess.Popen(
            [spec["python"], spec["script"], *spec["argv"]],
            cwd=run_dir / "work",
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env(spec, run_dir),
        )
        write_state(run_dir, status="Running", started_at=time.time(), child_pid=child.pid)
        while child.poll() is None:
            if stop["requested"] or (run_dir / "cancel").exists():
                child.terminate()
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
                break
            time.sleep(POLL)
    code = child.returncode
    finished = time.time()
    if (run_dir / "cancel").exists() or stop["requested"]:
        write_state(run_dir, status="Canceled", exit_code=code, finished_at=finished, error="canceled by request")
    elif code == 0:
        write_state(run_dir, status="Completed", exit_code=0, finished_at=finished, error=None)
    else:
        write_state(
            run_dir,
            status="Failed",
            exit_code=code,
            finished_at=finished,
            error=f"training script exited with code {code}",
        )
    os.close(slot)
    return 0


def main(run_dir: Path) -> int:
    try:
        return execute(run_dir)
    except Exception as exc:  # the runner must always leave a stated end
        write_state(run_dir, status="Failed", finished_at=time.time(), error=f"local runner failed: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
