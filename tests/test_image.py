"""The Docker image's filesystem and start, as the Dockerfile says, without a Docker engine (none runs here).

What this proves: requirements.txt alone (not the test tools) installs into a fresh virtualenv with the
pip the Dockerfile pins and runs the service; the files the Dockerfile COPYs are enough; the service
starts with only the variables the Dockerfile sets (AZML_HOME's /data moved to a temporary folder) and
the CMD's arguments; a client that is not loopback gets a 403 naming AZML_API_TOKENS until tokens are
set (as `docker run -e AZML_API_TOKENS=...` does); the HEALTHCHECK command passes. The outside client
is one a proxy in the container (127.0.0.1, named in AZML_TRUSTED_PROXIES) forwards for; without that
setting the CMD's --no-proxy-headers keeps X-Forwarded-For from naming anyone. Not proven: the image
build itself, the non-root user's file permissions, Docker's port mapping.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from amllib.settings import REPO_ROOT
from tests.conftest import free_port

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(instruction, argument) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(
        r"\\\n\s*", " ", "\n".join(raw for raw in DOCKERFILE.splitlines() if not raw.lstrip().startswith("#"))
    )
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for name, argument in instructions():
        if name == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(argument)))
    return env


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory, fresh_venv: Path) -> Path:
    """/app as the Dockerfile builds it: a fresh venv from requirements.txt with the pinned pip, and the COPYs."""
    root = tmp_path_factory.mktemp("image")
    app = root / "app"
    app.mkdir()
    for name, argument in instructions():
        if name == "COPY":
            source, target = argument.split()
            if source != "requirements.txt":
                copy = shutil.copytree if (REPO_ROOT / source).is_dir() else shutil.copy
                ignore = {"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}
                copy(REPO_ROOT / source, app / target, **ignore)
    (root / "venv").symlink_to(fresh_venv)
    return root


def start(image: Path, home: Path, **extra: str) -> tuple[subprocess.Popen, str]:
    """The CMD, with the venv's uvicorn, a free port on 127.0.0.1, and only the Dockerfile's variables."""
    cmd = json.loads(next(argument for name, argument in instructions() if name == "CMD"))
    port = free_port()
    cmd = [str(image / "venv" / "bin" / cmd[0]), *cmd[1:]]
    cmd[cmd.index("--port") + 1], cmd[cmd.index("--host") + 1] = str(port), "127.0.0.1"
    env = {k: v.replace("/data", str(home)) for k, v in dockerfile_env().items()}
    env |= {"PATH": f"{image / 'venv' / 'bin'}:/usr/bin:/bin", "HOME": str(home), **extra}
    log = home.parent / "service.log"
    home.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=image / "app", env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    proc.wait()
    raise AssertionError("the image's service did not start:\n" + log.read_text(errors="replace"))


def test_the_image_starts_as_the_dockerfile_says_and_tells_outside_clients_what_to_set(
    image: Path, tmp_path: Path
) -> None:
    outside = {"X-Forwarded-For": "203.0.113.7"}  # as a proxy in the container would name a client outside
    proc, url = start(image, tmp_path / "data")
    try:
        believed = httpx.get(url + "/runs", headers=outside)
        assert believed.status_code == 200  # no proxy named: the header is no client's address, loopback is
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    proc, url = start(image, tmp_path / "data", AZML_TRUSTED_PROXIES="127.0.0.1")
    try:
        refused = httpx.get(url + "/runs", headers=outside)
        assert refused.status_code == 403 and "AZML_API_TOKENS" in refused.json()["detail"]
        assert httpx.get(url + "/runs").status_code == 200  # loopback inside the container
        check = next(argument for name, argument in instructions() if name == "HEALTHCHECK")
        probe = json.loads(check.split("CMD", 1)[1].strip())
        probe = [
            str(image / "venv" / "bin" / probe[0]),
            *[p.replace(":8000", ":" + url.rsplit(":", 1)[1]) for p in probe[1:]],
        ]
        assert subprocess.run(probe, timeout=30).returncode == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    proc, url = start(image, tmp_path / "data", AZML_API_TOKENS="ci:image-test-token", AZML_TRUSTED_PROXIES="127.0.0.1")
    try:
        answer = httpx.get(url + "/runs", headers={**outside, "Authorization": "Bearer image-test-token"})
        assert answer.status_code == 200, answer.text
        run = httpx.post(
            url + "/runs", headers={**outside, "Authorization": "Bearer image-test-token"}, json={}, params={"wait": 5}
        )
        assert run.status_code in (200, 202, 404), run.text  # the .env defaults are there: no 422 for missing settings
        assert "missing" not in run.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
