"""Backends behind one interface (base.Backend): `local` (embedded) and `azureml`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from amllib.backends.base import Backend
    from amllib.settings import Settings


def get_backend(settings: Settings) -> Backend:
    """The backend the settings choose; azureml-core is imported only for `azureml`."""
    if settings.backend == "azureml":
        from amllib.backends.azureml import AzureMLBackend

        return AzureMLBackend(settings)
    from amllib.backends.local import LocalBackend

    return LocalBackend(settings)
