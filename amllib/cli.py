"""What the three command-line scripts share: settings, one-line errors, pipeline outputs."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from amllib.errors import AmlError
from amllib.settings import AZURE_IDENTITY, Settings, load_settings


def settings_requiring(*names: str) -> Settings:
    """Load settings and check `names` plus, on azureml, the identity: all missing ones at once."""
    settings = load_settings()
    needed = list(names) + (list(AZURE_IDENTITY) if settings.on_azure else [])
    settings.require(*needed)
    return settings


def set_pipeline_variable(name: str, value: object, *, github_name: str) -> None:
    """Hand a value to the next pipeline step: Azure DevOps logging command and GITHUB_OUTPUT."""
    print(f"##vso[task.setvariable variable={name}]{value}")
    github_output = os.environ.get("GITHUB_OUTPUT")
    if github_output:
        with open(github_output, "a", encoding="utf-8") as handle:
            handle.write(f"{github_name}={value}\n")


def run_main(main: Callable[[], int]) -> None:
    """Run a script's main; an AmlError becomes one line on stderr and exit status 1."""
    try:
        code = main()
    except AmlError as exc:
        print(f"ERROR! {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)
