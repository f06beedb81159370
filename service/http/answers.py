"""The named shape of every JSON answer that is not a job (those are in service/core/job_kinds.py).

/openapi.json publishes them, so a client generated from it gets a class for each answer instead of
a bare dict (tests/service/test_generated_client.py generates one and runs the flow through it), and
schemathesis holds every answer the service sends to them (tests/service/test_schema.py). They
document; routes still build plain dicts (no second validation on the way out). A part whose inner
shape is open (a run's tags, a platform's chat reply) is an object with any keys.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Time = Field(description="ISO 8601, UTC")


class Open(BaseModel):
    """An answer part that may carry more keys than those named."""

    model_config = ConfigDict(extra="allow")


# -- health and catalog ---------------------------------------------------------------------------
class Health(BaseModel):
    status: str = Field(description="ok")
    backend: str
    event_streams: int = Field(description="dashboards following GET /events now")


class ScriptArgument(BaseModel):
    name: str = Field(description="--name on the command line; a run passes it in `args`")
    type: str = Field(description="its argparse type's name (int, float, str), or flag")
    default: Any = Field(description="its default, when the script gives a literal one")
    help: str | None
    choices: list[str] | None
    required: bool


class Script(BaseModel):
    name: str
    bytes: int
    digest: str = Field(description="sha256:…, what a run of it records as script_digest")
    arguments: list[ScriptArgument] = Field(description="read from its argparse calls (never run): estimators first")
    arguments_error: str | None = Field(description="why its arguments could not be read")


class RunDefaults(BaseModel):
    """What a run gets for a field it does not name (AZML_SCRIPT, AZML_EXPERIMENT, ...)."""

    script: str | None
    experiment: str | None
    datapath: str | None
    model: str | None
    compute: str | None


class Scripts(BaseModel):
    scripts: list[Script]
    defaults: RunDefaults
    backend: str


class DataPath(BaseModel):
    path: str
    digest: str = Field(description="the data version: sha256 over the sorted file list and contents")
    files: int
    bytes: int


class Datastore(BaseModel):
    paths: list[DataPath]


class DataVersionSeen(BaseModel):
    digest: str
    files: int | None
    bytes: int | None
    uploaded_at: str | None = Time
    uploaded_by: str | None = Field(description="who uploaded it through the service (null: a script did)")
    upload: str | None = Field(description="its upload job (POST /data)")
    current: bool = Field(description="what the path holds now")
    runs: int = Field(description="how many runs read it")
    newest_runs: list[str]
    profiled: bool = Field(description="GET /datastore/profile?version= has its first rows and column profile")


class DataHistory(BaseModel):
    path: str
    versions: list[DataVersionSeen] = Field(description="newest first")


class ColumnProfile(BaseModel):
    name: str
    type: str = Field(description="integer, number, text or empty")
    missing: int
    distinct: int
    distinct_capped: bool = Field(description="more distinct values than were counted (10,000)")
    min: float | None
    max: float | None


class TablePreview(BaseModel):
    header: list[str]
    rows: list[list[str]]


class DataProfile(BaseModel):
    version: str
    file: str | None = Field(description="the table profiled: the first CSV or TSV file, by name")
    why: str | None = None
    rows_read: int | None = None
    complete: bool | None = Field(None, description="false: the file was read only up to 100,000 rows or 32 MiB")
    columns: list[ColumnProfile] | None = None
    preview: TablePreview | None = None


# -- runs -----------------------------------------------------------------------------------------
class RunMetrics(BaseModel):
    id: str
    metrics: dict[str, list[Any]] = Field(description="each metric's values in the order logged")


class ComparedRun(BaseModel):
    id: str
    backend_run_id: str | None
    metrics: dict[str, list[Any]]


class RunsMetrics(BaseModel):
    runs: list[ComparedRun]


class RunOutputs(BaseModel):
    id: str
    backend_run_id: str | None
    status: str
    files: list[str] = Field(description="paths under the run's outputs/")


# -- models ---------------------------------------------------------------------------------------
class ModelNames(BaseModel):
    models: list[str]


class VersionFigure(BaseModel):
    version: int
    accuracy: float | None


class ModelSummary(BaseModel):
    name: str
    versions: int
    latest: VersionFigure
    best: VersionFigure | None
    last_registered: str | None = Time
    accuracy: list[list[float]] = Field(description="[version, accuracy] of every version tagged with one")


class ModelsSummary(BaseModel):
    models: list[ModelSummary]


class ModelVersion(BaseModel):
    name: str
    version: int
    tags: dict[str, Any]
    run_id: str | None
    created_at: str | None = Time
    data_version: str | None
    script_digest: str | None
    description: str | None
    aliases: list[str]
    archived: bool


class ModelVersions(BaseModel):
    name: str
    versions: list[ModelVersion] = Field(description="oldest first")


# -- aliases and approvals ------------------------------------------------------------------------
class Alias(Open):
    model: str
    alias: str
    version: int | None
    since: str | None = None
    by: str | None = None
    reason: str | None = None
    removed: bool | None = None


class Aliases(BaseModel):
    model: str
    aliases: list[Alias]
    archived: list[int]


class AliasChange(Open):
    alias: str | None = None
    version: int | None = None
    at: str | None = None
    by: str | None = None
    reason: str | None = None


class AliasHistory(BaseModel):
    model: str
    history: list[AliasChange] = Field(description="newest first")


class MoveCheck(BaseModel):
    model: str
    alias: str
    candidate: dict[str, Any]
    holder: dict[str, Any] | None
    verdict: dict[str, Any]
    protected: bool
    outcome: str = Field(description="moves, asks_approval or refused")


class Approval(Open):
    id: str
    model: str
    alias: str
    version: int | None
    status: str = Field(description="pending, approving, approved, rejected, expired or failed")
    requested_by: str | None = None
    reason: str | None = None
    requested_at: str | None = Time
    expires_at: str | None = Time
    decided_by: str | None = None
    decided_at: str | None = Time
    note: str | None = None


class Approvals(BaseModel):
    approvals: list[Approval]


class ApprovalAsked(BaseModel):
    approval: Approval


# -- notifications ----------------------------------------------------------------------------------
class Delivery(Open):
    created_at: str | None = Time
    updated_at: str | None = Time


class Notifications(BaseModel):
    subscriptions: list[dict[str, Any]]
    deliveries: list[Delivery] = Field(description="newest first")


# -- endpoints --------------------------------------------------------------------------------------
class Deployment(BaseModel):
    slot: str
    model: str
    version: int
    alias: str | None
    traffic: int
    state: str = Field(description="serving, standby or failed")
    error: str | None


class Endpoint(Open):
    endpoint: str
    scoring_url: str | None
    health: str | None = Field(description="up or down")
    follow: dict[str, str] | None = Field(description="the alias it follows: {model, alias}")
    traffic: dict[str, int]
    deployments: list[Deployment]


class EndpointDetail(Endpoint):
    stats: dict[str, Any]
    history: list[dict[str, Any]] = Field(description="its deploy jobs, newest first")


class Endpoints(BaseModel):
    endpoints: list[Endpoint]


class EndpointParams(BaseModel):
    endpoint: str
    slot: str
    version: int
    params: Any


class EndpointTry(BaseModel):
    endpoint: str
    slot: str
    version: int
    status: int
    answer: Any


class EndpointKeys(Open):
    endpoint: str


class Deleted(Open):
    deleted: bool


# -- schedules --------------------------------------------------------------------------------------
class Fire(BaseModel):
    tick: str | None
    key: str | None
    fired_at: str | None
    run: str | None
    status: str | None
    outcome: Any


class ScheduleTrigger(Open):
    """cron (with tz), every (seconds) or on_data (a datastore path)."""


class ScheduledRun(Open):
    """The run each fire submits, as POST /runs takes it (defaults filled in at creation)."""


class PromoteAfter(Open):
    """The alias a completed run moves (through its gate)."""


class Schedule(BaseModel):
    name: str
    trigger: ScheduleTrigger
    run: ScheduledRun
    promote: PromoteAfter | None
    missed: str
    paused: bool
    next_fire: str | None = Time
    created_by: str | None
    created_at: str | None = Time
    fires: list[Fire] = Field(description="the newest first")


class Schedules(BaseModel):
    schedules: list[Schedule]


# -- chat-ops ------------------------------------------------------------------------------------------
class ChatReply(Open):
    """The platform's own reply format (Slack, Teams or Mattermost): text, and cards or blocks."""
