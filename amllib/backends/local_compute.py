"""Local compute: each run a detached OS process (local_runner) in its own folder.

Layout of AZML_HOME/runs/<run_id>/: run.json (what to run), state.json (status,
written by the runner), runner.pid, driver.log, metrics.jsonl, work/ (the
snapshot of training/, the script's working folder, holding outputs/).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from amllib.backends.base import RunInfo, RunSpec, RunStatus
from amllib.backends.local_runner import START_GRACE, pid_alive, queue_entry, write_state
from amllib.digest import file_sha256
from amllib.errors import RunNotFound, quoted
from amllib.settings import REPO_ROOT

# Training runs below the control plane's priority, so a burst of runs cannot starve the API.
RELAUNCH_AFTER = 5.0  # a run still without a runner this long after its submit was never launched
_NICE = ["nice", "-n", "10"] if shutil.which("nice") else []
_IGNORE = shutil.ignore_patterns("__pycache__", "outputs", ".*")


class LocalCompute:
    """Starts, watches and cancels local runs; every fact about a run lives in its folder."""

    def __init__(self, home: Path, *, training_dir: Path, max_nodes: int) -> None:
        self.runs_root = home / "runs"
        self.compute_root = home / "compute"
        self.runs_root.mkdir(parents=True, exist_ok=True)
        self.training_dir = training_dir
        self.max_nodes = max_nodes

    def run_dir(self, run_id: str) -> Path:
        folder = self.runs_root / run_id
        if "/" in run_id or run_id.startswith(".") or not (folder / "run.json").is_file():
            raise RunNotFound(f"run {quoted(run_id)} not found")
        return folder

    @staticmethod
    def new_run_id(spec: RunSpec) -> str:
        return f"{spec.experiment}_{int(time.time())}_{uuid.uuid4().hex[:8]}"

    def start(self, spec: RunSpec, *, run_id: str, data_dir: Path, data_version: str) -> str:
        """Snapshot training/, write the run's folder, and launch its runner detached."""
        folder = self.runs_root / run_id
        staging = self.runs_root / f".{run_id}.partial"
        try:
            self._prepare(spec, run_id=run_id, staging=staging, data_dir=data_dir, data_version=data_version)
            staging.rename(folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        record = json.loads((folder / "run.json").read_text())
        entry = queue_entry(record)  # taken now, so runs start in submit order whichever runner is quicker
        entry.parent.mkdir(parents=True, exist_ok=True)
        entry.touch()
        self._launch(folder)
        return run_id

    def _prepare(self, spec: RunSpec, *, run_id: str, staging: Path, data_dir: Path, data_version: str) -> None:
        shutil.copytree(self.training_dir, staging / "work", ignore=_IGNORE, symlinks=False)
        record = {
            "run_id": run_id,
            "experiment": spec.experiment,
            "script": spec.script,
            "compute": spec.compute,
            "datapath": spec.datapath,
            "data_dir": str(data_dir),
            "data_version": data_version,
            "script_digest": "sha256:" + file_sha256(staging / "work" / spec.script),
            "argv": spec.script_arguments(str(data_dir)),
            "python": sys.executable,
            "max_nodes": self.max_nodes,
            "compute_dir": str(self.compute_root / spec.compute),
            "queued_ns": time.time_ns(),
            "created_at": time.time(),
            "estimators": spec.estimators,
            "args": spec.args,
            "tags": spec.tags,
        }
        (staging / "run.json").write_text(json.dumps(record))
        (staging / "state.json").write_text(json.dumps({"status": "Queued"}))

    def discard_stale_partials(self, older_than: float = 3600.0) -> int:
        """Remove run folders whose submit died half-written (a kill during the snapshot)."""
        removed = 0
        for folder in self.runs_root.glob(".*.partial"):
            try:
                stale = time.time() - folder.stat().st_mtime > older_than
            except OSError:
                continue
            if stale:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed

    def holds_data(self, run_id: str) -> bool | None:
        """Whether the run may still read its data (it has not ended); None if it is not written yet."""
        try:
            return not RunStatus(self.read(run_id)[1]["status"]).terminal
        except RunNotFound:
            return None
        except (OSError, ValueError, KeyError):
            return False

    def _launch(self, folder: Path) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
        with (folder / "runner.log").open("ab") as log:
            proc = subprocess.Popen(
                [*_NICE, sys.executable, "-m", "amllib.backends.local_runner", str(folder)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                env=env,
                cwd=folder,
            )
        # Reap the runner when it ends so it never lingers as a zombie that looks alive.
        threading.Thread(target=proc.wait, daemon=True, name=f"reap-{proc.pid}").start()

    def _relaunch_if_never_started(self, folder: Path, record: dict[str, Any]) -> None:
        """A run whose submitter was killed between writing its folder and launching its runner: launch it.

        Once, after RELAUNCH_AFTER s without a runner; the runner's own lock makes a second launch harmless.
        """
        marker = folder / "relaunched"
        if time.time() - record["created_at"] > RELAUNCH_AFTER and not marker.exists():
            marker.touch()
            self._launch(folder)

    def _runner_pid(self, folder: Path) -> int | None:
        try:
            return int((folder / "runner.pid").read_text())
        except (OSError, ValueError):
            return None

    def _runner_alive(self, folder: Path) -> bool:
        pid = self._runner_pid(folder)
        if pid is None or not pid_alive(pid):
            return False
        try:
            return str(folder) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return True

    def read(self, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """run.json and state.json, first settling a run whose runner vanished as Failed."""
        folder = self.run_dir(run_id)
        record = json.loads((folder / "run.json").read_text())
        state = json.loads((folder / "state.json").read_text())
        if RunStatus(state["status"]).terminal or self._runner_alive(folder):
            return record, state
        if self._runner_pid(folder) is None and time.time() - record["created_at"] < START_GRACE:
            self._relaunch_if_never_started(folder, record)
            return record, state
        state = json.loads((folder / "state.json").read_text())  # it may have just finished
        if not RunStatus(state["status"]).terminal:
            reason = (
                "the local runner process ended without recording a result (killed, or the machine restarted)"
                if self._runner_pid(folder)
                else "the local runner process never started"
            )
            write_state(folder, status="Failed", finished_at=time.time(), error=reason)
            state = json.loads((folder / "state.json").read_text())
        return record, state

    def info(self, run_id: str) -> RunInfo:
        record, state = self.read(run_id)
        return RunInfo(
            run_id=run_id,
            status=RunStatus(state["status"]),
            experiment=record["experiment"],
            script=record["script"],
            created_at=record["created_at"],
            started_at=state.get("started_at"),
            finished_at=state.get("finished_at"),
            exit_code=state.get("exit_code"),
            error=state.get("error"),
            data_version=record["data_version"],
            script_digest=record["script_digest"],
            tags=dict(record.get("tags") or {}),
            datapath=record.get("datapath"),
            compute=record.get("compute"),
            estimators=record.get("estimators"),
            args=dict(record.get("args") or {}),
        )

    def list_run_ids(self, *, created_after: float, limit: int) -> list[str]:
        """Ids of the runs created after that time, oldest first; old ones are skipped by name, unread."""
        found = []
        for name in os.listdir(self.runs_root):
            try:
                named_at = int(name.rsplit("_", 2)[1])  # run ids are <experiment>_<epoch seconds>_<hex>
            except (IndexError, ValueError):
                continue
            if name.startswith(".") or named_at + 1 < created_after:
                continue
            try:
                created = json.loads((self.runs_root / name / "run.json").read_text())["created_at"]
            except (OSError, ValueError, KeyError):
                continue
            if created > created_after:
                found.append((created, name))
        return [name for _, name in sorted(found)[:limit]]

    def ended_before(self, cutoff: float) -> list[str]:
        """Ids of the runs that ended before cutoff (epoch seconds); unfinished runs never."""
        found = []
        for name in self.list_run_ids(created_after=0.0, limit=10**9):
            if int(name.rsplit("_", 2)[1]) >= cutoff:
                continue  # created after the cutoff, so it cannot have ended before it: not read
            try:
                info = self.info(name)
            except (RunNotFound, OSError, ValueError, KeyError):
                continue
            if info.status.terminal and (info.finished_at or info.created_at) < cutoff:
                found.append(name)
        return found

    def discard(self, run_id: str) -> bool:
        """Remove an ended run's folder: renamed aside in one step (so nothing serves half of it), then deleted."""
        try:
            _, state = self.read(run_id)
        except RunNotFound:
            return False
        if not RunStatus(state["status"]).terminal:
            return False
        trash = self.runs_root / f".trash-{run_id}"
        try:
            os.replace(self.runs_root / run_id, trash)
        except FileNotFoundError:
            return False  # removed meanwhile
        self.empty_trash()
        return True

    def empty_trash(self) -> int:
        """Delete the run folders discard() renamed aside, including any a kill left half-deleted."""
        trash = list(self.runs_root.glob(".trash-*"))
        for folder in trash:
            shutil.rmtree(folder, ignore_errors=True)
        return len(trash)

    def cancel(self, run_id: str) -> None:
        folder = self.run_dir(run_id)
        _, state = self.read(run_id)
        if RunStatus(state["status"]).terminal:
            return
        (folder / "cancel").touch()
        pid = self._runner_pid(folder)
        if pid is not None and self._runner_alive(folder):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(pid), signal.SIGTERM)
        elif pid is None:
            return  # the runner has not started; it sees the cancel file first thing
        else:
            write_state(folder, status="Canceled", finished_at=time.time(), error="canceled by request")

    def find(self, experiment: str, *, tag: str, value: str) -> list[str]:
        """Run ids of the experiment whose submit tags match."""
        found = []
        for folder in self.runs_root.glob(f"{experiment}_*"):
            try:
                record = json.loads((folder / "run.json").read_text())
            except (OSError, ValueError):
                continue
            if record.get("tags", {}).get(tag) == value:
                found.append(record["run_id"])
        return sorted(found)
