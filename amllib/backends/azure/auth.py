"""Choosing Azure credentials without prompts, and keeping secrets out of messages.

Order: a service principal from AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET;
else AZML_AUTH=msi (managed identity), cli (Azure CLI login; needs azure-cli
installed) or interactive (a browser login, only when asked for).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from amllib.errors import BackendUnavailable, ConfigError
from amllib.settings import Settings

SP_VARIABLES = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")


def secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values that must never appear in a log, a response or an error."""
    environ = os.environ if environ is None else environ
    return [environ[n] for n in ("AZURE_CLIENT_SECRET",) if environ.get(n)]


def scrub(text: str, environ: Mapping[str, str] | None = None) -> str:
    for secret in secrets(environ):
        text = text.replace(secret, "***")
    return text


def auth_method(settings: Settings, environ: Mapping[str, str] | None = None) -> str:
    """Which credential the settings ask for: "service principal", "msi", "cli" or "interactive"."""
    environ = os.environ if environ is None else environ
    given = [n for n in SP_VARIABLES if environ.get(n)]
    if settings.auth == "msi" and given == ["AZURE_CLIENT_ID"]:
        return "msi"  # a user-assigned managed identity, chosen by its client id
    if given and len(given) < len(SP_VARIABLES):
        missing = [n for n in SP_VARIABLES if n not in given]
        raise ConfigError(
            "service principal auth needs all of " + ", ".join(SP_VARIABLES) + "; missing: " + ", ".join(missing)
        )
    if given:
        return "service principal"
    if settings.auth:
        return settings.auth
    raise ConfigError(
        "no Azure credentials: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET "
        "(service principal), or AZML_AUTH=msi, cli or interactive"
    )


METHOD_NAMES = {"msi": "managed identity", "cli": "Azure CLI", "interactive": "interactive login"}


def choose_auth(settings: Settings, environ: Mapping[str, str] | None = None) -> tuple[str, Any]:
    """(name of the method, azureml.core authentication object): SDK v1."""
    from azureml.core import authentication

    environ = os.environ if environ is None else environ
    method = auth_method(settings, environ)
    if method == "service principal":
        auth = authentication.ServicePrincipalAuthentication(
            tenant_id=environ["AZURE_TENANT_ID"],
            service_principal_id=environ["AZURE_CLIENT_ID"],
            service_principal_password=environ["AZURE_CLIENT_SECRET"],
        )
        return method, auth
    if method == "msi":
        return METHOD_NAMES[method], authentication.MsiAuthentication()
    if method == "cli":
        try:
            return METHOD_NAMES[method], authentication.AzureCliAuthentication()
        except Exception as exc:  # the SDK raises its own types when azure-cli is missing or logged out
            raise BackendUnavailable(
                "AZML_AUTH=cli needs the Azure CLI installed (pip install azure-cli) and "
                f"'az login' done: {scrub(str(exc), environ)}"
            ) from exc
    tenant = environ.get("AZURE_TENANT_ID") or None
    return METHOD_NAMES[method], authentication.InteractiveLoginAuthentication(tenant_id=tenant)


def choose_credential(settings: Settings, environ: Mapping[str, str] | None = None) -> tuple[str, Any]:
    """(name of the method, azure-identity credential): SDK v2. Nothing is contacted until first use."""
    from azure import identity

    environ = os.environ if environ is None else environ
    method = auth_method(settings, environ)
    if method == "service principal":
        credential = identity.ClientSecretCredential(
            tenant_id=environ["AZURE_TENANT_ID"],
            client_id=environ["AZURE_CLIENT_ID"],
            client_secret=environ["AZURE_CLIENT_SECRET"],
        )
        return method, credential
    if method == "msi":  # AZURE_CLIENT_ID, when set alone, picks a user-assigned identity
        return METHOD_NAMES[method], identity.ManagedIdentityCredential(client_id=environ.get("AZURE_CLIENT_ID"))
    if method == "cli":
        return METHOD_NAMES[method], identity.AzureCliCredential()
    tenant = environ.get("AZURE_TENANT_ID") or None
    return METHOD_NAMES[method], identity.InteractiveBrowserCredential(tenant_id=tenant)
