"""Online endpoints: serving a model version (amllib/scoring.py) behind a stable URL, blue/green."""

from __future__ import annotations

from amllib.backends.base import Backend
from amllib.endpoints.base import Endpoints
from amllib.errors import InvalidInput
from amllib.settings import Settings


def get_endpoints(settings: Settings, backend: Backend) -> Endpoints:
    """The backend's online endpoints; InvalidInput where there are none."""
    if settings.backend == "local":
        from amllib.endpoints.local import LocalEndpoints

        return LocalEndpoints(settings, backend)
    if settings.backend == "azureml":
        raise InvalidInput(
            "online endpoints need AZML_BACKEND=azureml-v2 or local: SDK v1's web services (ACI/AKS) are retired"
        )
    from amllib.endpoints.azure_v2 import AzureV2Endpoints

    return AzureV2Endpoints(settings, backend)
