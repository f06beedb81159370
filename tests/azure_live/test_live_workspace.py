"""The real flow against a real Azure ML workspace: skipped unless AZML_LIVE=1 and the Azure variables are set.

    AZML_LIVE=1 AZML_SUBID=... AZML_RESGRP=... AZML_WORKSPACE=... AZML_COMPUTE_NAME=cpu-cluster \\
    AZURE_TENANT_ID=... AZURE_CLIENT_ID=... AZURE_CLIENT_SECRET=... ./test.sh tests/azure_live

It uploads the shipped Titanic data, trains scikit-titanic.py on the cluster (created if
missing; this costs money and takes minutes), registers the model and fetches the best
version. AZML_RUN_LOCAL=true runs the training on this machine through Azure ML instead (v1).
AZML_BACKEND=azureml-v2 runs the same flow through azure-ai-ml; the default is the v1 backend.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from amllib.backends import get_backend
from amllib.backends.base import RunStatus
from amllib.fetch import fetch_model
from amllib.settings import REPO_ROOT, load_settings
from amllib.training import spec_from_settings, train_and_register

NEEDED = ("AZML_SUBID", "AZML_RESGRP", "AZML_WORKSPACE")
pytestmark = pytest.mark.skipif(
    os.environ.get("AZML_LIVE") != "1" or not all(os.environ.get(n) for n in NEEDED),
    reason="live Azure tests need AZML_LIVE=1 and " + ", ".join(NEEDED),
)


def test_titanic_on_azure(tmp_path: Path) -> None:
    chosen = os.environ.get("AZML_BACKEND", "azureml")
    assert chosen in ("azureml", "azureml-v2"), "the live suite runs an Azure backend"
    settings = load_settings(backend=chosen, training_dir=REPO_ROOT / "training", home=tmp_path / "aml")
    settings = settings.model_copy(
        update={
            "script": settings.script or "scikit-titanic.py",
            "experiment": settings.experiment or "aml-live-test",
            "model": settings.model or "aml-live-test-model",
            "datapath": settings.datapath or "aml-live-titanic",
            "compute_name": settings.compute_name or "cpu-cluster",
        }
    )
    backend = get_backend(settings)
    data = backend.upload_data(REPO_ROOT / "data" / "titanic", target_path=settings.datapath)
    assert backend.current_data(settings.datapath) == data
    result = train_and_register(
        backend, spec_from_settings(settings, estimators=20), model_name=settings.model, poll=15
    )
    assert result.run.status == RunStatus.COMPLETED, backend.get_log(result.run.run_id, tail=50)
    assert result.model_version is not None and "accuracy" in result.model_version.tags  # read through MLflow
    assert backend.get_metrics(result.run.run_id)["accuracy"], "the script's MLflow metrics are read back"
    assert "Accuracy on" in backend.get_log(result.run.run_id)
    fetched = fetch_model(backend, name=settings.model, output_path=tmp_path / "pickles", use_best=True)
    metadata = json.loads((tmp_path / "pickles" / "metadata.json").read_text())
    assert metadata["version"] == fetched.model.version
    assert {"model.pkl", "lookup.pkl", "flags.pkl"} <= set(fetched.files)


def test_a_v1_style_script_logs_are_read_back_on_azure(tmp_path: Path) -> None:
    """Run.get_context().log() inside a job (v1 or v2) lands in the workspace's one metrics store."""
    chosen = os.environ.get("AZML_BACKEND", "azureml")
    fixtures = REPO_ROOT / "tests" / "fixtures" / "training"
    settings = load_settings(backend=chosen, training_dir=fixtures, home=tmp_path / "aml")
    settings = settings.model_copy(
        update={
            "script": "aml_v1_logging.py",
            "experiment": settings.experiment or "aml-live-test",
            "datapath": settings.datapath or "aml-live-titanic",
            "compute_name": settings.compute_name or "cpu-cluster",
        }
    )
    backend = get_backend(settings)
    backend.upload_data(REPO_ROOT / "data" / "titanic", target_path=settings.datapath)
    result = train_and_register(backend, spec_from_settings(settings, estimators=7), model_name="aml-live-v1", poll=15)
    assert result.run.status == RunStatus.COMPLETED, backend.get_log(result.run.run_id, tail=50)
    assert backend.get_metrics(result.run.run_id)["accuracy"][-1] == 0.93
    assert result.model_version is not None and result.model_version.tags["accuracy"] == 0.93
