"""The seed's helpers under their original names and call forms, built on the Backend interface.

A script written against the seed's amllib.utils keeps working unchanged:

    checkVars(['AZML_SUBID', 'AZML_RESGRP', 'AZML_WORKSPACE'])
    ws = connectToAML(subId, resGrp, workspaceName)
    compute = getComputeAML(ws, name="amlcluster")
    downloadPickles(ws, modelName, outputPath="./pickles", modelVer=None)   # None latest, "best", or a number

On the `azureml` backend connectToAML returns the real azureml-core Workspace, so a seed-era
script that goes on to `ws.get_default_datastore()` or `Experiment(workspace=ws, ...)` still
works; on the other backends it returns the Backend, which the other helpers take as well.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from amllib.backends import get_backend
from amllib.backends.base import Backend
from amllib.cli import set_pipeline_variable
from amllib.errors import ConfigError, InvalidInput
from amllib.fetch import FetchResult, fetch_model
from amllib.settings import Settings, load_settings

# A Workspace handed out by connectToAML → the backend behind it (the helpers take either).
_BACKENDS: dict[int, tuple[Any, Backend]] = {}


def checkVars(names: Iterable[str] | str = (), *more: str, settings: Settings | None = None) -> Settings:  # noqa: N802
    """Exit non-zero naming every missing variable at once; return the settings.

    Takes the seed's list (`checkVars(['AZML_SUBID', ...])`) or names as arguments. An AZML_* name
    is checked in the settings (environment and .env), any other in the environment.
    """
    wanted = [names] if isinstance(names, str) else list(names)
    wanted += list(more)
    try:
        settings = settings or load_settings()
        fields = [
            n.removeprefix("AZML_").lower() for n in wanted if n.removeprefix("AZML_").lower() in Settings.model_fields
        ]
        missing = settings.missing(*fields)
        missing += [
            n for n in wanted if n.removeprefix("AZML_").lower() not in Settings.model_fields and not os.environ.get(n)
        ]
        if missing:
            raise ConfigError("missing required variables: " + ", ".join(missing))
    except ConfigError as exc:
        print(f"ERROR! {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    return settings


def _is_set(settings: Settings, name: str) -> bool:
    field = name.removeprefix("AZML_").lower()
    if name.startswith("AZML_") and field in Settings.model_fields:
        return getattr(settings, field) not in (None, "")
    return bool(os.environ.get(name))


def connectToAML(  # noqa: N802 - the seed's name
    subId: str | Settings | None = None,  # noqa: N803 - the seed's parameter names
    resGrp: str | None = None,  # noqa: N803
    workspaceName: str | None = None,  # noqa: N803
    *,
    settings: Settings | None = None,
) -> Any:
    """Connect to the configured backend: the azureml Workspace itself on `azureml`, else the Backend.

    The seed's form passes subscription, resource group and workspace name; given, they win over
    AZML_SUBID/AZML_RESGRP/AZML_WORKSPACE. `connectToAML(settings)` still works too.
    """
    if isinstance(subId, Settings):
        settings, subscription = subId, None
    else:
        subscription = subId
    settings = settings or load_settings()
    given = {"subid": subscription, "resgrp": resGrp, "workspace": workspaceName}
    settings = settings.model_copy(update={k: v for k, v in given.items() if v})
    settings.require_identity()
    backend = get_backend(settings)
    if backend.name != "azureml":
        return backend
    workspace = backend.workspace  # type: ignore[attr-defined]  # connects now, as the seed's did
    _BACKENDS[id(workspace)] = (workspace, backend)
    return workspace


def _backend(handle: Any) -> Backend:
    """The Backend behind what connectToAML returned (a Backend, or an azureml Workspace)."""
    if isinstance(handle, Backend):
        return handle
    found = _BACKENDS.get(id(handle))
    if found is None or found[0] is not handle:
        raise InvalidInput("pass what connectToAML() returned (a workspace or backend handle)")
    return found[1]


def getComputeAML(handle: Any, name: str = "amlcluster") -> Any:  # noqa: N802 - the seed's name
    """Get the compute target, creating it if it does not exist: the azureml ComputeTarget, elsewhere its name."""
    backend = _backend(handle)
    made = backend.ensure_compute(name)
    if backend.name == "azureml" and not backend.settings.run_local:  # type: ignore[attr-defined]
        return backend.sdk.ComputeTarget(workspace=handle, name=made)  # type: ignore[attr-defined]
    return made


def downloadPickles(  # noqa: N802 - the seed's name
    handle: Any,
    modelName: str | None = None,  # noqa: N803 - the seed's parameter names
    outputPath: str | Path = "./pickles",  # noqa: N803
    modelVer: int | str | None = None,  # noqa: N803
    *,
    model_name: str | None = None,
    output_path: str | Path | None = None,
    version: int | None = None,
    use_best: bool = False,
) -> FetchResult:
    """Fetch a model version's outputs/ and metadata.json into outputPath, as the seed did.

    modelVer: None for the latest, "best" for the best by accuracy, or a version number. Prints the
    Azure DevOps variable line (##vso[task.setvariable variable=AZML_MODEL_VER]) like fetch-model.py.
    """
    name = model_name or modelName
    if not name:
        raise InvalidInput("downloadPickles needs a model name")
    if isinstance(modelVer, str) and modelVer.strip().lower() == "best":
        use_best = True
    elif modelVer is not None and version is None:
        try:
            version = int(modelVer)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"modelVer must be None, 'best' or a version number, not {modelVer!r}") from exc
    target = Path(output_path if output_path is not None else outputPath)
    result = fetch_model(_backend(handle), name=name, output_path=target, version=version, use_best=use_best)
    set_pipeline_variable("AZML_MODEL_VER", result.model.version, github_name="model_version")
    return result
