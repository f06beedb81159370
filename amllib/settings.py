"""Every AZML_* setting, typed and described, read once from the environment and `.env`.

Tests build `Settings(...)` explicitly (with `_env_file=None`) instead of leaning on
the process environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from amllib.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent

AZURE_IDENTITY = ("subid", "resgrp", "workspace")


class Settings(BaseSettings):
    """Configuration of the library, the scripts and the service."""

    model_config = SettingsConfigDict(
        env_prefix="AZML_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
    )

    # The seed's variables.
    workspace: str | None = Field(None, description="Name of the AML workspace (azureml backend)")
    resgrp: str | None = Field(None, description="Resource group holding the workspace (azureml backend)")
    subid: str | None = Field(None, description="Azure subscription id (azureml backend)")
    datapath: str | None = Field(None, description="Path in the datastore that holds the data, e.g. titanic-data")
    script: str | None = Field(None, description="Training script inside training/, e.g. scikit-titanic.py")
    experiment: str | None = Field(None, description="Experiment name, created if missing")
    model: str | None = Field(None, description="Registered model name, created if missing")
    run_local: bool = Field(False, description="azureml: run through AML but execute on this machine")
    compute_name: str | None = Field(None, description="Compute cluster name, created if missing")
    compute_vmsize: str = Field("Standard_D3_v2", description="VM size of the AML compute cluster")
    compute_max_nodes: int = Field(4, ge=1, description="Max cluster nodes; local backend: max runs at once")
    compute_min_nodes: int = Field(0, ge=0, description="Min cluster nodes")

    # Added by this project.
    backend: Literal["local", "azureml"] = Field("local", description="Which backend: local or azureml")
    home: Path = Field(Path(".aml"), description="Where the local backend and the service keep state")
    training_dir: Path = Field(REPO_ROOT / "training", description="Folder of training scripts")
    auth: Literal["msi", "cli", "interactive"] | None = Field(
        None, description="azureml auth when no service principal is set: msi, cli or interactive"
    )

    @field_validator("home", "training_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    def missing(self, *names: str) -> list[str]:
        """Names (as AZML_* variables) of the given settings that are unset or empty."""
        return [f"AZML_{n.upper()}" for n in names if getattr(self, n) in (None, "")]

    def require(self, *names: str) -> None:
        """Raise ConfigError naming every one of `names` that is unset, all at once."""
        missing = self.missing(*names)
        if missing:
            raise ConfigError("missing required variables: " + ", ".join(missing))

    def require_identity(self) -> None:
        """The Azure identity variables are needed only by the azureml backend."""
        if self.backend == "azureml":
            self.require(*AZURE_IDENTITY)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and `.env`, turning validation errors into ConfigError."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = [f"AZML_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid settings: " + "; ".join(problems)) from exc
