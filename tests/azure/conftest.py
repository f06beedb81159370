"""Fixtures both Azure backends' tests share: workspace settings, and Azurite for the blob side."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from amllib.backends.base import RunSpec
from amllib.settings import Settings
from tests.azure.azurite import AZURITE, Azurite
from tests.conftest import make_settings


def workspace_settings(root: Path, backend: str) -> Settings:
    """A workspace's settings as a user would set them (nothing here can reach Azure)."""
    return make_settings(
        root,
        backend=backend,
        subid="sub-1",
        resgrp="rg-1",
        workspace="ws-1",
        compute_vmsize="Standard_D3_v2",
        compute_min_nodes=0,
        compute_max_nodes=3,
    )


def spec_for(default_script: str, **kwargs: object) -> RunSpec:
    """A run of a script in tests/fixtures/training on test-data, with any field (the script too) replaced."""
    values = {"script": default_script, "experiment": "tests", "datapath": "test-data", "compute": "cluster"}
    return RunSpec(**{**values, **kwargs})


@pytest.fixture
def azure_settings(tmp_path: Path) -> Settings:
    return workspace_settings(tmp_path / "aml", "azureml")


@pytest.fixture
def v2_settings(tmp_path: Path) -> Settings:
    return workspace_settings(tmp_path / "aml", "azureml-v2")


@pytest.fixture
def azurite(tmp_path: Path) -> Iterator[Azurite]:
    if not AZURITE.exists():
        pytest.fail("Azurite is not installed: run ./test.sh (it installs tests/azurite with npm)")
    emulator = Azurite(tmp_path / "azurite")
    yield emulator
    emulator.stop()
