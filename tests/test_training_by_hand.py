"""Each script in training/ run by hand, as a data scientist would: no tracking server, no MLFLOW_* or AZML_*.

It must train, write outputs/ and print its metrics (MLflow 3 would otherwise default to a SQL store
that mlflow-skinny cannot open, and the script crashed in its first log_metric).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from amllib.settings import REPO_ROOT

TRAINING = REPO_ROOT / "training"


def bare_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AZML_"))}


def crime_data(folder: Path) -> Path:
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "generate-crime-data.py"), "--rows", "3000", "--out", str(folder)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return folder


@pytest.mark.parametrize("script", sorted(p.name for p in TRAINING.glob("*.py")))
def test_a_training_script_runs_by_hand(script: str, tmp_path: Path) -> None:
    data = REPO_ROOT / "data" / "titanic" if "titanic" in script else crime_data(tmp_path / "crime")
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        [sys.executable, str(TRAINING / script), "--data-path", str(data), "--estimators", "5"],
        cwd=work,
        env=bare_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "ccuracy" in done.stdout and "./mlruns" in done.stdout
    assert (work / "outputs" / "model.pkl").is_file()
    assert any((work / "mlruns").rglob("accuracy"))  # the metric, in MLflow's file store


@pytest.mark.parametrize("script", sorted(p.name for p in TRAINING.glob("*.py")))
def test_an_argument_the_script_does_not_know_fails_it_naming_the_argument(script: str, tmp_path: Path) -> None:
    """Issue 26, item 18: `--arg sed=7` (seed misspelt) trained with the default seed and said nothing."""
    done = subprocess.run(
        [sys.executable, str(TRAINING / script), "--data-path", str(tmp_path), "--sed=7"],
        cwd=tmp_path,
        env=bare_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "unrecognized arguments: --sed=7" in done.stderr, done.stderr[-500:]
    assert not (tmp_path / "outputs").exists()
