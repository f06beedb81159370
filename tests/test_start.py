"""./start.sh as the README gives it, on a copy of the repository (issue 26, items 11 and 12).

The copy holds the tracked files and, as its .venv, the fresh virtualenv of requirements.txt
(tests/conftest.py `fresh_venv`) with setup-venv.sh's stamp saying so, so setup-venv.sh finds
everything installed (installing it from requirements.txt is what that fixture proves). What
runs for real: the argument handling, .env made from .env.sample, the port check, the demo's
once-only rule and the uvicorn command.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from amllib.settings import REPO_ROOT
from tests.conftest import free_port


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory, fresh_venv: Path) -> Path:
    root = tmp_path_factory.mktemp("clone") / "repo"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (REPO_ROOT / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, root / name)
    venv = root / ".venv"
    shutil.copytree(fresh_venv, venv, symlinks=True)  # setup-venv.sh may rewrite its activate script: a copy's
    stamp = hashlib.sha256(2 * (REPO_ROOT / "requirements.txt").read_bytes()).hexdigest()
    (venv / ".installed-requirements.sha256").write_text(stamp + "\n")
    return root


def user_env(clone: Path, **extra: str) -> dict[str, str]:
    """A shell's environment as a user has it: this machine's PATH without the test run's virtualenv."""
    path = ":".join(p for p in os.environ["PATH"].split(":") if "/.venv" not in p and "/venv/" not in p)
    return {"PATH": path, "HOME": str(clone.parent), **extra}


def start(clone: Path, *args: str, port: int) -> subprocess.Popen:
    env = user_env(clone, AZML_PORT=str(port))
    with (clone.parent / f"start-{port}.log").open("wb") as log:
        return subprocess.Popen(["./start.sh", *args], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT)


def output(clone: Path, port: int) -> str:
    return (clone.parent / f"start-{port}.log").read_text(errors="replace")


def test_start_no_demo_only_serves(clone: Path) -> None:
    port = free_port()
    proc = start(clone, "--no-demo", port=port)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert proc.poll() is None, output(clone, port)
        assert httpx.get(f"http://127.0.0.1:{port}/runs", timeout=5).json()["items"] == []  # no demo ran
        assert "the demo is skipped (--no-demo)" in output(clone, port)
        assert (clone / ".env").is_file()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_start_on_a_taken_port_says_so_before_running_anything(clone: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start(clone, port=port)
        assert proc.wait(timeout=120) == 1
    said = output(clone, port)
    assert f"127.0.0.1:{port} is taken" in said and "AZML_PORT" in said, said
    assert "upload-data.py" not in said  # the demo did not run
    assert not (clone / ".aml" / "demo.json").exists()


def test_the_demo_runs_once_unless_asked_again(clone: Path) -> None:
    (clone / ".aml").mkdir(exist_ok=True)
    (clone / ".aml" / "demo.json").write_text('{"at": "2026-12-03 10:00", "model": "titanic-model", "version": 1}')
    python = str(clone / ".venv" / "bin" / "python")
    once = subprocess.run([python, "scripts/demo.py", "--once"], cwd=clone, capture_output=True, text=True, timeout=60)
    assert once.returncode == 0 and "ran before (2026-12-03 10:00: titanic-model version 1)" in once.stdout
    assert "./start.sh --demo" in once.stdout and "upload-data.py" not in once.stdout
    wrong = subprocess.run(
        ["./start.sh", "--nope"], cwd=clone, env=user_env(clone), capture_output=True, text=True, timeout=30
    )
    assert wrong.returncode == 2 and "usage" in wrong.stderr
