"""Shared fixtures: settings built explicitly, backends on real files and processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from amllib.backends import get_backend
from amllib.backends.base import Backend
from amllib.settings import REPO_ROOT, Settings

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TEST_TRAINING = FIXTURES / "training"
TITANIC = REPO_ROOT / "data" / "titanic"


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with what requirements.txt alone installs (not the test tools), with the pip the
    Dockerfile pins: what the image and ./start.sh run with on a fresh machine."""
    import re

    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip_pin = re.search(r"pip install --no-cache-dir (pip==[\d.]+)", (REPO_ROOT / "Dockerfile").read_text())
    assert pip_pin, "the Dockerfile pins pip"
    for args in ([pip_pin.group(1)], ["-r", str(REPO_ROOT / "requirements.txt")]):
        done = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", *args],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return venv


def make_settings(home: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "home": home,
        "training_dir": TEST_TRAINING,
        "datapath": "test-data",
        "experiment": "tests",
        "model": "test-model",
        "script": "aml_v1_logging.py",
        "compute_name": "local-cluster",
        "compute_max_nodes": 2,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "aml")


@pytest.fixture(params=["local", "azureml", "azureml-v2"])
def backend(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Backend:
    """Each contract test runs on the local backend and on both Azure backends over fake workspaces."""
    if request.param == "local":
        return get_backend(settings)
    if request.param == "azureml-v2":
        from tests.azure.fake_aml_v2 import FakeAzureV2

        return FakeAzureV2(tmp_path / "azure-v2", settings).backend(
            settings.model_copy(update={"backend": "azureml-v2"})
        )
    from tests.azure.fake_aml import FakeAzure

    return FakeAzure(tmp_path / "azure", settings).backend(settings.model_copy(update={"backend": "azureml"}))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("x,y\n1,2\n")
    (folder / "sub" / "b.txt").write_text("hello")
    return folder


def script_env(settings: Settings, **extra: str) -> dict[str, str]:
    """A clean environment for the scripts: AZML_* from settings only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZML_")}
    env.update(
        {
            "AZML_ENV_FILE": "none",  # never a developer's .env in the project's folder
            "AZML_HOME": str(settings.home),
            "AZML_TRAINING_DIR": str(settings.training_dir),
            "AZML_COMPUTE_MAX_NODES": str(settings.compute_max_nodes),
        }
    )
    for name in ("datapath", "experiment", "model", "script", "compute_name"):
        value = getattr(settings, name)
        if value:
            env[f"AZML_{name.upper()}"] = value
    env.update(extra)
    return env


def run_script(name: str, *args: str, env: dict[str, str], cwd: Path, **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / name), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        **kwargs,
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The admin URL of the session's PostgreSQL server (tests/postgres.py): started on first use."""
    from tests import postgres

    with postgres.server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A database of this test's own on the session's PostgreSQL server."""
    from tests import postgres

    with postgres.database(postgres_server) as url:
        yield url
