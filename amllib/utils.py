"""The seed's helpers under their original names, built on the Backend interface."""

from __future__ import annotations

import sys
from pathlib import Path

from amllib.backends import get_backend
from amllib.backends.base import Backend
from amllib.errors import ConfigError
from amllib.fetch import FetchResult, fetch_model
from amllib.settings import Settings, load_settings


def checkVars(*names: str, settings: Settings | None = None) -> Settings:  # noqa: N802 - the seed's name
    """Exit non-zero naming every missing variable (AZML_X or X) at once; return the settings."""
    try:
        settings = settings or load_settings()
        settings.require(*(n.removeprefix("AZML_").lower() for n in names))
    except ConfigError as exc:
        print(f"ERROR! {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    return settings


def connectToAML(settings: Settings) -> Backend:  # noqa: N802 - the seed's name
    """Connect to the configured backend (for azureml, the workspace)."""
    settings.require_identity()
    return get_backend(settings)


def getComputeAML(backend: Backend, name: str) -> str:  # noqa: N802 - the seed's name
    """Get the compute target, creating it if it does not exist."""
    return backend.ensure_compute(name)


def downloadPickles(  # noqa: N802 - the seed's name
    backend: Backend,
    model_name: str,
    output_path: str | Path,
    version: int | None = None,
    use_best: bool = False,
) -> FetchResult:
    """Fetch a model version's outputs/ and metadata.json into output_path."""
    return fetch_model(backend, name=model_name, output_path=Path(output_path), version=version, use_best=use_best)
