"""Backends behind one interface (base.Backend): `local` (embedded), `azureml` (SDK v1) and `azureml-v2`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from amllib.backends.base import Backend
    from amllib.settings import Settings


def get_backend(settings: Settings) -> Backend:
    """The backend the settings choose; each Azure SDK is imported only for its own backend."""
    if settings.backend == "azureml-v2":
        from amllib.backends.azure.v2 import AzureMLV2Backend

        return AzureMLV2Backend(settings)
    if settings.backend == "azureml":
        from amllib.backends.azure.v1 import AzureMLBackend

        return AzureMLBackend(settings)
    from amllib.backends.local import LocalBackend

    return LocalBackend(settings)
