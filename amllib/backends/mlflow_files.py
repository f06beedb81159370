"""Reads what a script logged with MLflow into a file store, without importing mlflow.

Local runs point MLflow at `<run folder>/mlruns` (MLFLOW_TRACKING_URI=file:…), so a script
that calls `mlflow.log_metric` or `set_tag` records its values there exactly as
it would on Azure ML, where the workspace is the tracking store. The file store's layout is
MLflow's own and frozen (the store is in maintenance mode): `<experiment>/<run>/metrics/<key>`
holds `timestamp value step` lines, `tags/<key>` one value each. Keys may
hold `/`, so the folders are walked. MLflow's own `mlflow.*` tags are left out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

TRACKING_FOLDER = "mlruns"


def tracking_env(run_dir: Path, experiment: str) -> dict[str, str]:
    """The variables that send a local script's MLflow calls into its run folder."""
    return {
        "MLFLOW_TRACKING_URI": (run_dir / TRACKING_FOLDER).resolve().as_uri(),
        "MLFLOW_ALLOW_FILE_STORE": "true",  # mlflow 3 refuses the file store unless told
        "MLFLOW_EXPERIMENT_NAME": experiment,
    }


def _values(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    found = {}
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            full = Path(dirpath, name)
            found[str(full.relative_to(folder))] = full
    return found


def _runs(root: Path) -> list[Path]:
    """Run folders of every experiment, oldest first (a script normally makes one)."""
    runs = [run for experiment in root.iterdir() if experiment.is_dir() for run in experiment.iterdir()]
    runs = [run for run in runs if (run / "meta.yaml").is_file()]
    return sorted(runs, key=lambda run: run.stat().st_mtime)


def read_metrics(run_dir: Path) -> dict[str, list[Any]]:
    """Every value of every metric, in the order logged (by step, then time)."""
    root = run_dir / TRACKING_FOLDER
    history: dict[str, list[Any]] = {}
    if not root.is_dir():
        return history
    for run in _runs(root):
        for key, path in sorted(_values(run / "metrics").items()):
            points = []
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                parts = line.split()
                if len(parts) >= 2:
                    try:
                        points.append((int(parts[2]) if len(parts) > 2 else 0, int(parts[0]), float(parts[1])))
                    except ValueError:
                        continue  # a line cut short by a killed script
            history.setdefault(key, []).extend(value for _, _, value in sorted(points))
    return history


def read_tags(run_dir: Path) -> dict[str, str]:
    """The tags the script set itself (`mlflow.set_tag`); MLflow's own `mlflow.*` tags are left out."""
    root = run_dir / TRACKING_FOLDER
    found: dict[str, str] = {}
    if not root.is_dir():
        return found
    for run in _runs(root):
        for key, path in _values(run / "tags").items():
            if not key.startswith("mlflow."):
                found[key] = path.read_text(encoding="utf-8", errors="replace")
    return found
