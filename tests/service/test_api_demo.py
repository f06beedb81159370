"""scripts/api-demo.py against a live service: found where ./start.sh serves it, the best version downloaded."""

from __future__ import annotations

from pathlib import Path

from amllib.settings import REPO_ROOT
from tests.conftest import run_script
from tests.service.conftest import FULL_TOKEN


def test_api_demo_finds_the_service_where_start_sh_serves_it(make_service, tmp_path: Path) -> None:
    service = make_service(AZML_TRAINING_DIR=str(REPO_ROOT / "training"))
    env = {"AZML_PORT": str(service.port), "AZML_TOKEN": FULL_TOKEN, "PATH": "/usr/bin:/bin"}
    demo = run_script("api-demo.py", "--out", str(tmp_path / "best"), env=env, cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "best titanic-model: version 1" in demo.stdout
    assert (tmp_path / "best" / "metadata.json").is_file()
    closed = run_script("api-demo.py", env={"AZML_PORT": "9", "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert closed.returncode == 1 and closed.stderr.startswith("ERROR! no service answers at http://127.0.0.1:9")
