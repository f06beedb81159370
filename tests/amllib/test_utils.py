"""amllib/utils.py: the seed's helpers, called exactly as a seed-era script calls them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from amllib.backends import get_backend
from amllib.training import spec_from_settings, train_and_register
from amllib.utils import checkVars, connectToAML, downloadPickles, getComputeAML
from tests.conftest import make_settings, script_env


@pytest.fixture
def seed_env(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local workspace with one registered model, and the environment a seed-era pipeline sets."""
    settings = make_settings(tmp_path / "aml", model="batcomputer-model")
    backend = get_backend(settings)
    backend.upload_data(data_dir, target_path=settings.datapath)
    done = train_and_register(backend, spec_from_settings(settings, estimators=3), model_name=settings.model, poll=0.2)
    assert done.model_version is not None
    for name, value in script_env(settings, AZML_SUBID="sub", AZML_RESGRP="rg", AZML_WORKSPACE="ws").items():
        if name.startswith("AZML_"):
            monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_seed_era_script_runs_unchanged_on_the_local_backend(seed_env: Path, capsys) -> None:
    checkVars(["AZML_SUBID", "AZML_RESGRP", "AZML_WORKSPACE", "AZML_MODEL"])
    ws = connectToAML(os.environ["AZML_SUBID"], os.environ["AZML_RESGRP"], os.environ["AZML_WORKSPACE"])
    compute = getComputeAML(ws, name=os.environ["AZML_COMPUTE_NAME"])
    assert compute == os.environ["AZML_COMPUTE_NAME"]
    downloadPickles(ws, os.environ["AZML_MODEL"], outputPath="./pickles", modelVer=None)
    assert "##vso[task.setvariable variable=AZML_MODEL_VER]1" in capsys.readouterr().out
    metadata = json.loads((seed_env / "pickles" / "metadata.json").read_text())
    assert metadata["name"] == "batcomputer-model" and metadata["version"] == 1
    downloadPickles(ws, os.environ["AZML_MODEL"], "./best", "best")
    downloadPickles(ws, os.environ["AZML_MODEL"], "./one", 1)
    assert (seed_env / "best" / "metadata.json").is_file() and (seed_env / "one" / "metadata.json").is_file()


def test_check_vars_names_every_missing_variable_at_once(seed_env: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("AZML_MODEL")
    monkeypatch.delenv("AZML_DATAPATH")
    with pytest.raises(SystemExit) as exited:
        checkVars(["AZML_MODEL", "AZML_DATAPATH", "AZML_EXPERIMENT", "SOME_OTHER_VARIABLE"])
    assert exited.value.code == 1
    assert "AZML_MODEL, AZML_DATAPATH, SOME_OTHER_VARIABLE" in capsys.readouterr().err
    checkVars("AZML_EXPERIMENT")  # the newer form


def test_connect_on_azureml_returns_the_real_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A seed-era script goes on to ws.get_default_datastore(): on azureml it gets the SDK's Workspace."""
    from tests.azure.fake_aml import FakeAzure

    settings = make_settings(tmp_path / "aml", backend="azureml", subid="s", resgrp="r", workspace="w")
    fake = FakeAzure(tmp_path / "azure", settings)
    monkeypatch.setattr("amllib.utils.get_backend", lambda s: fake.backend(s))
    ws = connectToAML("s", "r", "w", settings=settings)
    assert ws is fake.workspace and ws.get_default_datastore().name == "workspaceblobstore"
    fake.add_compute("amlcluster")
    assert getComputeAML(ws) is fake.computes["amlcluster"]
