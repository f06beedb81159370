"""Online endpoints on this machine: one process per endpoint (amllib/endpoints/server.py), on a port of
its own that never changes, serving the slots endpoint.json names.

A slot's files are a fetched model version (amllib/fetch.py) in a folder of their own under the
endpoint's folder, so a slot given a new version never overwrites files a request may be reading.
The process runs in a session of its own: it keeps serving while the control plane stops or
restarts; ensure_running (the service calls it every few seconds) starts it again when it died
(`kill -9` included) or after a reboot, on the same port with the same versions. Keys are kept in
endpoint.json (mode 600) and never logged.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from amllib.backends.base import Backend, ModelVersion
from amllib.endpoints import state as states
from amllib.endpoints.base import DeploymentInfo, EndpointInfo, Endpoints
from amllib.endpoints.state import EndpointState, Slot, new_key
from amllib.errors import BackendUnavailable, EndpointNotFound, InvalidInput, SmokeTestFailed, quoted
from amllib.fetch import fetch_model
from amllib.names import check_name
from amllib.scoring import FILES, ModelContractError, model_folder
from amllib.settings import REPO_ROOT, Settings

START_SECONDS = 30.0  # a process that does not answer /healthz this long after it started has failed
LOAD_SECONDS = 120.0  # a version that is not served this long after it was written has failed
PID = "server.pid"
LOG = "server.log"


class LocalEndpoints(Endpoints):
    def __init__(self, settings: Settings, backend: Backend) -> None:
        self.root = settings.home / "endpoints"
        self.host = settings.endpoint_host
        self.backend = backend
        self._children: dict[str, subprocess.Popen] = {}
        self._starting = threading.Lock()

    # -- reading --------------------------------------------------------------------------------
    def _folder(self, name: str) -> Path:
        check_name(name, what="endpoint name")
        return self.root / name

    def _state(self, name: str) -> EndpointState:
        found = states.read(self._folder(name))
        if found is None:
            raise EndpointNotFound(f"endpoint {quoted(name)} not found")
        return found

    def _url(self, state: EndpointState) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{state.port}"

    def _health(self, state: EndpointState) -> dict[str, Any] | None:
        try:
            answer = httpx.get(f"{self._url(state)}/healthz", timeout=2.0)
            found = answer.json() if answer.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return found if isinstance(found, dict) and found.get("endpoint") == state.name else None

    def list_endpoints(self) -> list[EndpointInfo]:
        if not self.root.is_dir():
            return []
        names = sorted(p.name for p in self.root.iterdir() if (p / states.STATE).is_file())
        return [self.get(name) for name in names]

    def get(self, name: str) -> EndpointInfo:
        state = self._state(name)
        health = self._health(state)
        errors = (health or {}).get("errors", {})
        deployments = [
            DeploymentInfo(
                name=slot,
                model=found.model,
                version=found.version,
                alias=found.alias,
                traffic=state.traffic.get(slot, 0),
                error=errors.get(slot),
            )
            for slot, found in sorted(state.deployments.items())
        ]
        return EndpointInfo(
            name=name,
            scoring_url=self._url(state),
            deployments=deployments,
            health="up" if health else "down",
            follow=state.follow,
            extra={"generation": state.generation, "served_generation": (health or {}).get("generation")},
        )

    # -- changing ---------------------------------------------------------------------------------
    def deploy(self, name: str, slot: str, version: ModelVersion, *, alias: str | None) -> None:
        folder = self._folder(name)
        new = states.read(folder) is None
        files = f"deployments/{slot}-v{version.version}-{uuid.uuid4().hex[:8]}"
        try:
            fetch_model(self.backend, name=version.name, output_path=folder / files, version=version.version)
            missing = [f for f in FILES if not (model_folder_or(folder / files) / f).is_file()]
            if missing:  # refused before any process starts or any state is written
                raise SmokeTestFailed(
                    f"version {version.version} of {version.name} cannot be served: its files lack "
                    f"{', '.join(missing)} (a served model needs model.pkl, lookup.pkl and flags.pkl)"
                )
        except BaseException:
            shutil.rmtree(folder / files, ignore_errors=True)
            if new:
                shutil.rmtree(folder, ignore_errors=True)  # no half-made endpoint
            raise
        if new:
            states.change(folder, lambda found: found or EndpointState.new(name, free_port(self.host)))

        def put(found: EndpointState | None) -> EndpointState:
            if found is None:
                raise EndpointNotFound(f"endpoint {quoted(name)} was deleted while deploying")
            found.deployments[slot] = Slot(version.name, version.version, files, alias, time.time())
            found.traffic.setdefault(slot, 0)
            return found

        written = states.change(folder, put)
        assert written is not None
        self._start_if_down(name)
        health = self._wait_served(name, written.generation)
        if slot in health.get("errors", {}):
            raise SmokeTestFailed(f"version {version.version} cannot be served: {health['errors'][slot]}")
        self._tidy(name)

    def invoke(self, name: str, path: str, body: Any | None, *, slot: str) -> tuple[int, Any]:
        state = self._state(name)
        headers = {"Authorization": f"Bearer {state.keys['primary']}", "azureml-model-deployment": slot}
        try:
            if body is None:
                answer = httpx.get(self._url(state) + path, headers=headers, timeout=30.0)
            else:
                answer = httpx.post(self._url(state) + path, json=body, headers=headers, timeout=30.0)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"endpoint {name} did not answer: {type(exc).__name__}") from exc
        try:
            return answer.status_code, answer.json()
        except ValueError:
            return answer.status_code, {"error": answer.text[:200]}

    def set_traffic(self, name: str, traffic: dict[str, int]) -> None:
        folder = self._folder(name)

        def put(found: EndpointState | None) -> EndpointState:
            if found is None:
                raise EndpointNotFound(f"endpoint {quoted(name)} not found")
            unknown = set(traffic) - set(found.deployments)
            if unknown:
                raise InvalidInput(f"endpoint {name} has no deployment {', '.join(sorted(unknown))}")
            found.traffic = {slot: traffic.get(slot, 0) for slot in found.deployments}
            return found

        written = states.change(folder, put)
        assert written is not None
        self._start_if_down(name)
        self._wait_served(name, written.generation)

    def remove_slot(self, name: str, slot: str) -> None:
        folder = self._folder(name)

        def put(found: EndpointState | None) -> EndpointState:
            if found is None:
                raise EndpointNotFound(f"endpoint {quoted(name)} not found")
            found.deployments.pop(slot, None)
            found.traffic.pop(slot, None)
            return found

        written = states.change(folder, put)
        assert written is not None
        if self._health(written) is not None:
            self._wait_served(name, written.generation)
        self._tidy(name)

    def set_follow(self, name: str, follow: dict[str, str] | None) -> None:
        def put(found: EndpointState | None) -> EndpointState:
            if found is None:
                raise EndpointNotFound(f"endpoint {quoted(name)} not found")
            found.follow = follow
            return found

        states.change(self._folder(name), put)

    def delete(self, name: str) -> None:
        folder = self._folder(name)
        self._state(name)
        self._stop(name)
        states.change(folder, lambda found: None)
        shutil.rmtree(folder, ignore_errors=True)

    def keys(self, name: str) -> dict[str, str]:
        return dict(self._state(name).keys)

    def regenerate_key(self, name: str, which: str) -> dict[str, str]:
        if which not in ("primary", "secondary"):
            raise InvalidInput("key is primary or secondary")

        def put(found: EndpointState | None) -> EndpointState:
            if found is None:
                raise EndpointNotFound(f"endpoint {quoted(name)} not found")
            found.keys[which] = new_key()
            return found

        written = states.change(self._folder(name), put)
        assert written is not None
        if self._health(written) is not None:
            self._wait_served(name, written.generation)  # the old key is refused from now on
        return dict(written.keys)

    def stats(self, name: str) -> dict[str, Any]:
        state = self._state(name)
        try:
            answer = httpx.get(
                f"{self._url(state)}/stats", headers={"Authorization": f"Bearer {state.keys['primary']}"}, timeout=2.0
            )
            return answer.json() if answer.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            return {}

    # -- the processes ----------------------------------------------------------------------------
    def ensure_running(self) -> list[str]:
        started = []
        for info in self.list_endpoints():
            if info.health == "down" and self._start_if_down(info.name):
                started.append(info.name)
        return started

    def _start_if_down(self, name: str) -> bool:
        """Start the endpoint's process unless it answers; True when it was started."""
        with self._starting:
            state = self._state(name)
            if self._health(state) is not None:
                return False
            if self._running(name):
                return False  # alive, only slow to answer (busy scoring): never restarted for that
            self._children.pop(name, None)
            self._stop(name)
            folder = self._folder(name)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AZML_", "AZURE_"))}  # no secrets
            with (folder / LOG).open("ab") as log:
                child = subprocess.Popen(
                    [sys.executable, "-m", "amllib.endpoints.server", str(folder), self.host],
                    cwd=REPO_ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,  # not stopped with the control plane
                )
            self._children[name] = child
            (folder / PID).write_text(str(child.pid))
            deadline = time.monotonic() + START_SECONDS
            while self._health(state) is None:
                if child.poll() is not None:
                    raise BackendUnavailable(
                        f"endpoint {name} exited at start (code {child.returncode}): {_tail(folder / LOG)}"
                    )
                if time.monotonic() > deadline:
                    raise BackendUnavailable(f"endpoint {name} did not answer within {START_SECONDS:.0f} s")
                time.sleep(0.1)
            return True

    def _running(self, name: str) -> bool:
        """Whether the endpoint's server process is alive (by its pid file), answering or not."""
        folder = self._folder(name)
        child = self._children.get(name)
        try:
            pid = int((folder / PID).read_text())
        except (OSError, ValueError):
            return False
        return _is_server(pid, folder) and _alive(pid, child if child is not None and child.pid == pid else None)

    def _stop(self, name: str) -> None:
        """Stop the endpoint's process (by its pid file; it may be a previous service's child)."""
        folder = self._folder(name)
        child = self._children.pop(name, None)
        pid: int | None
        try:
            pid = int((folder / PID).read_text())
        except (OSError, ValueError):
            pid = child.pid if child else None
        if pid is not None and _is_server(pid, folder):
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                if not _alive(pid, child):
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(5)
        (folder / PID).unlink(missing_ok=True)

    def _wait_served(self, name: str, generation: int) -> dict[str, Any]:
        state = self._state(name)
        deadline = time.monotonic() + LOAD_SECONDS
        while True:
            health = self._health(state)
            if health is not None and health.get("generation", 0) >= generation:
                return health
            if time.monotonic() > deadline:
                raise BackendUnavailable(f"endpoint {name} did not take its new state within {LOAD_SECONDS:.0f} s")
            time.sleep(0.05)

    def _tidy(self, name: str) -> None:
        """Remove slot folders no slot names any more (a rollback target is still named: kept)."""
        folder = self._folder(name)
        state = states.read(folder)
        if state is None or not (folder / "deployments").is_dir():
            return
        named = {Path(slot.folder).name for slot in state.deployments.values()}
        for found in (folder / "deployments").iterdir():
            if found.name not in named and not found.name.startswith("."):
                shutil.rmtree(found, ignore_errors=True)


def model_folder_or(root: Path) -> Path:
    """Where a fetched version keeps model.pkl (root itself when it has none anywhere)."""
    try:
        return model_folder(root)
    except ModelContractError:
        return root


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host if host not in ("", "0.0.0.0") else "127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _alive(pid: int, child: subprocess.Popen | None) -> bool:
    if child is not None and child.pid == pid:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _is_server(pid: int, folder: Path) -> bool:
    """Whether pid is this endpoint's server (a pid file outlives its process; the number may be reused)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"amllib.endpoints.server" in command and str(folder).encode() in command


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])[-500:]
    except OSError:
        return ""
