"""Every backend built as the app builds it: get_backend(settings) with the real SDK modules, no fakes.

The v1 backend once passed every test while `get_backend()` could not build it (its SDK namespace
missed a class the fakes supplied themselves). Here nothing is injected: the real azureml-core and
azure-ai-ml objects are made from settings alone, with credentials that cannot succeed and every
endpoint pointed at a closed port on 127.0.0.1, and the first use must fail with our own clear
error (naming the workspace and the auth method, never the secret), never TypeError, AttributeError
or ImportError.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from amllib.backends import get_backend
from amllib.errors import AmlError, BackendUnavailable
from tests.conftest import free_port, make_settings

SECRET = "never-a-real-secret-4f1c"


@pytest.fixture
def unreachable_azure(monkeypatch: pytest.MonkeyPatch) -> str:
    """A service principal that cannot sign in: its authority is a closed port; retries don't wait."""
    closed = f"https://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000000")
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-1111-1111-1111-111111111111")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", closed)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # with_retry's backoff, looked up at call time
    return closed


@pytest.mark.parametrize("backend_name", ["azureml", "azureml-v2"])
def test_an_azure_backend_builds_from_settings_alone_and_fails_clearly_on_first_use(
    tmp_path: Path, unreachable_azure: str, backend_name: str
) -> None:
    settings = make_settings(
        tmp_path / "aml", backend=backend_name, subid="sub-0", resgrp="rg-0", workspace="ws-unreachable"
    )
    backend = get_backend(settings)  # the real SDK classes; nothing contacted yet
    assert backend.name == backend_name
    started = time.monotonic()
    with pytest.raises(AmlError) as caught:
        backend.list_models()
    error = caught.value
    assert isinstance(error, BackendUnavailable), repr(error)
    assert "ws-unreachable" in str(error)
    assert SECRET not in str(error) and SECRET not in repr(error.__cause__ or "")
    assert time.monotonic() - started < 120


def test_the_local_backend_builds_from_settings_alone(tmp_path: Path) -> None:
    backend = get_backend(make_settings(tmp_path / "aml"))
    assert backend.name == "local" and backend.list_models() == []


def test_the_v1_sdk_namespace_is_complete() -> None:
    """real_sdk() fills every field of Sdk with the installed azureml-core class (it once missed one)."""
    from dataclasses import fields

    from amllib.backends.azure.v1_sdk import real_sdk

    sdk = real_sdk()
    assert all(getattr(sdk, f.name) is not None for f in fields(sdk))
