"""Every AZML_* setting, typed and described, read once from the environment and `.env`.

Tests build `Settings(...)` explicitly (with `_env_file=None`) instead of leaning on
the process environment.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from amllib.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent

AZURE_IDENTITY = ("subid", "resgrp", "workspace")
CHAT_PLATFORMS = ("slack", "teams", "mattermost")


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
    backend: Literal["local", "azureml", "azureml-v2"] = Field(
        "local", description="Which backend: local, azureml (SDK v1) or azureml-v2 (SDK v2, azure-ai-ml)"
    )
    env_file: str | None = Field(
        None,
        description=(
            "The .env file to read (none: no file). Unset: .env in the current folder, else in the project's folder"
        ),
    )
    home: Path = Field(Path(".aml"), description="Where the local backend and the service keep state")
    training_dir: Path = Field(REPO_ROOT / "training", description="Folder of training scripts")
    env_image: str = Field(
        "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
        description="Azure backends: the Docker base image runs train in (the pinned packages are added to it)",
    )
    auth: Literal["msi", "cli", "interactive"] | None = Field(
        None, description="azureml auth when no service principal is set: msi, cli or interactive"
    )

    # The service.
    db_url: str | None = Field(
        None,
        description="Job store: sqlite:///path (default: AZML_HOME/jobs.sqlite, one process) or "
        "postgresql://user:password@host:port/db (several replicas share it)",
    )
    lease_seconds: float = Field(
        30.0,
        ge=3,
        le=3600,
        allow_inf_nan=False,
        description="On PostgreSQL: a replica that stops renewing its jobs' leases this long loses them to another"
        " (3 to 3600)",
    )
    api_tokens: str = Field("", description="Comma-separated bearer tokens with full access, each name:token or token")
    api_read_tokens: str = Field("", description="Comma-separated bearer tokens for GET requests only (name:token)")
    data_root: Path | None = Field(None, description="POST /data {data_dir} may only name folders under this")
    output_root: Path | None = Field(None, description="POST /models/fetch writes only under this folder")
    max_upload_bytes: int = Field(10 * 1024**3, ge=1, description="Largest upload, in bytes (unpacked)")
    max_upload_files: int = Field(100_000, ge=1, description="Most files in one upload")
    webhook_secret: str | None = Field(None, description="HMAC key for the X-Signature of callbacks")
    callback_hosts: str = Field("", description="Comma-separated hosts (host or host:port) callbacks may go to")
    cors_origins: str = Field("", description="Comma-separated origins allowed by CORS, e.g. the dashboard")
    trusted_proxies: str = Field(
        "",
        description="Comma-separated addresses or networks (10.0.0.0/8) of the proxies in front of the service, "
        "whose X-Forwarded-For names the client; none by default: the client is whoever connects",
    )
    allowed_hosts: str = Field(
        "",
        description="Comma-separated host names the service answers to (*.example.com, * for any); "
        "default: the loopback names while no tokens are set, any host once they are",
    )
    body_timeout: float = Field(
        60.0, gt=0, description="Seconds a request body may stall (no bytes arriving) before it is cut off (408)"
    )
    job_concurrency: int = Field(4, ge=1, description="Data and fetch jobs carried out at once")
    run_import_seconds: float = Field(
        10.0,
        ge=0,
        description="How often runs started elsewhere (scripts, studio) are brought into GET /runs; 0: never",
    )
    db_synchronous: Literal["full", "normal"] = Field(
        "full", description="Job store fsync: full survives a power loss; normal only a crash of the service"
    )
    metrics: bool = Field(True, description="Serve Prometheus metrics at GET /metrics and keep them")
    poll_seconds: float = Field(1.0, gt=0, description="How often a running job's backend status is read")
    azure_retry_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Azure backends: the most one call may take with its retries (waits Azure asks for included)",
    )
    azure_connect_timeout: float = Field(
        10.0, gt=0, le=300, description="Azure backends: seconds to make a connection before a try fails"
    )
    azure_read_timeout: float = Field(
        60.0, gt=0, le=3600, description="Azure backends: seconds an answer may stall before a try fails"
    )
    backend_reads_per_second: float = Field(
        5.0,
        gt=0,
        description="Azure backends: reads per second all watched runs share (status and metrics), under quotas",
    )
    log_format: Literal["text", "json"] = Field("text", description="Service log lines: text or json")
    access_log: bool = Field(True, description="One log line per request, with its request id and caller")
    retention_days: float | None = Field(
        None, gt=0, description="Remove ended jobs, their local run folders and stale staging after this many days"
    )
    retention_sweep_seconds: float = Field(3600.0, gt=0, description="How often the retention sweep runs")

    # Which model is in production.
    alias_gates: str = Field(
        "",
        description="Gates every move of an alias must pass, whoever asks: alias=metric:max|min:min_delta, "
        "comma-separated (e.g. production=accuracy:max:0.0)",
    )
    protected_aliases: str = Field(
        "", description="Comma-separated aliases that move only once someone other than the requester approves"
    )
    approval_hours: float = Field(
        72.0, gt=0, le=24 * 90, allow_inf_nan=False, description="Hours a pending approval waits before it expires"
    )

    notify: str = Field(
        "",
        description='Subscriptions to registry events, as JSON: a list of {"name", "to": slack|teams|mattermost|'
        'webhook, "url", "events" (run.failed, model.registered, alias.changed, approval.requested, '
        'approval.decided; default all), "models" (default all), "secret" (webhook; default '
        "AZML_WEBHOOK_SECRET)}",
    )

    # Online endpoints (the local backend's own processes; Azure ML managed online endpoints on azureml-v2).
    endpoint_host: str = Field(
        "127.0.0.1",
        description="Local endpoints listen on this address (0.0.0.0: every interface), each on its own port",
    )
    endpoint_instance_type: str = Field(
        "Standard_DS3_v2",
        pattern=r"^[A-Za-z0-9_]{1,64}$",
        description="azureml-v2: the VM size of each managed online deployment (one instance per version)",
    )
    endpoint_deploy_minutes: float = Field(
        30.0,
        gt=0,
        le=24 * 60,
        allow_inf_nan=False,
        description="azureml-v2: minutes a managed online deployment may take to become ready, else it failed",
    )

    # Chat-ops and the dashboard's links.
    public_url: str | None = Field(None, description="The service's address as users reach it; links to /ui/runs/{id}")
    slack_signing_secret: str | None = Field(None, description="Slack app's signing secret (slash commands)")
    slack_webhook_url: str | None = Field(
        None, description="Slack incoming webhook for notices once a response_url expired"
    )
    teams_hmac_secret: str | None = Field(None, description="Teams outgoing webhook's security token (base64)")
    teams_webhook_url: str | None = Field(
        None, description="Teams Workflows 'webhook request received' URL for notices"
    )
    mattermost_token: str | None = Field(None, description="Mattermost slash command's token")
    chatops_writers: str = Field(
        "", description="Chat users allowed to train and cancel, as platform:id (slack:U123, teams:29:1…); * all"
    )

    @property
    def chatops_writer_set(self) -> frozenset[str]:
        return _split(self.chatops_writers)

    def check_chatops_writers(self) -> None:
        """Every writer names its platform: a bare id would match the same id on any platform."""
        bare = sorted(w for w in self.chatops_writer_set if w != "*" and w.split(":", 1)[0] not in CHAT_PLATFORMS)
        if bare:
            raise ConfigError(
                "AZML_CHATOPS_WRITERS entries must be platform:id (slack:, teams: or mattermost:), not "
                + ", ".join(repr(w[:40]) for w in bare)
            )

    @property
    def named_tokens(self) -> dict[str, str]:
        """Full-access token → its name (who did what is recorded by name, never by token)."""
        return _named(self.api_tokens)

    @property
    def named_read_tokens(self) -> dict[str, str]:
        return _named(self.api_read_tokens)

    @property
    def token_set(self) -> frozenset[str]:
        return frozenset(self.named_tokens)

    @property
    def read_token_set(self) -> frozenset[str]:
        return frozenset(self.named_read_tokens)

    @property
    def callback_host_set(self) -> frozenset[str]:
        return frozenset(h.lower() for h in _split(self.callback_hosts))

    @property
    def protected_alias_set(self) -> frozenset[str]:
        return _split(self.protected_aliases)

    @property
    def alias_gate_map(self) -> dict[str, str]:
        """alias → its gate's text (amllib.promotion.Gate.parse checks it at start-up)."""
        found = {}
        for entry in _split(self.alias_gates):
            alias, sep, gate = entry.partition("=")
            if not sep or not alias.strip() or not gate.strip():
                raise ConfigError(f"AZML_ALIAS_GATES entries are alias=metric:max|min:min_delta, not {entry[:60]!r}")
            found[alias.strip()] = gate.strip()
        return found

    @property
    def trusted_proxy_list(self) -> list[str]:
        """The proxies whose X-Forwarded-For is believed, each an address or a network (checked here)."""
        proxies = sorted(_split(self.trusted_proxies))
        wrong = []
        for entry in proxies:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                wrong.append(entry[:60])
        if wrong:
            raise ConfigError(
                "AZML_TRUSTED_PROXIES takes IP addresses or networks (10.0.0.0/8), not "
                + ", ".join(repr(w) for w in wrong)
                + ("; '*' would let any client name any address" if "*" in wrong else "")
            )
        return proxies

    @property
    def allowed_host_set(self) -> frozenset[str]:
        return frozenset(h.lower() for h in _split(self.allowed_hosts))

    @property
    def cors_origin_list(self) -> list[str]:
        return sorted(_split(self.cors_origins))

    @property
    def db_on_postgres(self) -> bool:
        """Whether the job store is PostgreSQL (shared by replicas) rather than the embedded SQLite file."""
        if self.db_url and self.db_url.startswith(("postgresql://", "postgres://")):
            return True
        if self.db_url and not self.db_url.startswith("sqlite:///"):
            raise ConfigError(
                "AZML_DB_URL must be sqlite:///<path> or postgresql://user:password@host:port/database "
                "(the value given is neither; it is not repeated here, since it may hold a password)"
            )
        return False

    @property
    def db_path(self) -> Path:
        """The SQLite file of the job store."""
        if self.db_on_postgres:
            raise ConfigError("the job store is PostgreSQL, not a file")
        if not self.db_url:
            return self.home / "jobs.sqlite"
        return Path(self.db_url.removeprefix("sqlite:///")).expanduser().resolve()

    @field_validator("home", "training_dir", "data_root", "output_root")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().resolve()

    def missing(self, *names: str) -> list[str]:
        """Names (as AZML_* variables) of the given settings that are unset or empty."""
        return [f"AZML_{n.upper()}" for n in names if getattr(self, n) in (None, "")]

    def require(self, *names: str) -> None:
        """Raise ConfigError naming every one of `names` that is unset, all at once."""
        missing = self.missing(*names)
        if missing:
            raise ConfigError("missing required variables: " + ", ".join(missing))

    @property
    def on_azure(self) -> bool:
        return self.backend in ("azureml", "azureml-v2")

    def require_identity(self) -> None:
        """The Azure identity variables are needed only by the Azure backends."""
        if self.on_azure:
            self.require(*AZURE_IDENTITY)


def _split(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(",") if part.strip())


_TOKEN_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def token_name(token: str) -> str:
    """The name a bare token goes by: a short hash, so logs can tell tokens apart without showing one."""
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:8]


def _named(value: str) -> dict[str, str]:
    """`name:token` entries (a bare token is named by its hash) as token → name."""
    found = {}
    for entry in _split(value):
        name, sep, token = entry.partition(":")
        if sep and token and _TOKEN_NAME.fullmatch(name):
            found[token] = name
        else:
            found[entry] = token_name(entry)
    return found


def dotenv_file() -> Path | None:
    """The .env file settings are read from: AZML_ENV_FILE when set (`none`: no file), else `.env` in the
    current folder, else `.env` in the project's folder (where ./start.sh writes it), else none."""
    named = os.environ.get("AZML_ENV_FILE")
    if named is not None:
        if named.strip().lower() in ("", "none"):
            return None
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"AZML_ENV_FILE names {str(path)!r}, which is not a file")
        return path
    for folder in (Path.cwd(), REPO_ROOT):
        if (folder / ".env").is_file():
            return (folder / ".env").absolute()
    return None


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and the .env file (dotenv_file(); `_env_file` overrides), turning
    validation errors into ConfigError. Other overrides win over both (a script's --model flag)."""
    from pydantic import ValidationError

    if "_env_file" not in overrides:
        overrides["_env_file"] = dotenv_file()
    try:
        return Settings.model_validate(overrides)
    except ValidationError as exc:
        problems = [f"AZML_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid settings: " + "; ".join(problems)) from exc
