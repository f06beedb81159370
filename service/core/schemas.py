"""Request bodies (validated, unknown fields refused) and the JSON shape of each kind of job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    model_validator,
)

from amllib.names import MAX_ARG_VALUE, MAX_SCRIPT_ARGS
from amllib.times import iso
from service.core.job_kinds import (
    DataJob,
    DataResult,
    DataSpec,
    DeployJob,
    DeployResult,
    DeploySpec,
    FetchJob,
    FetchResult,
    FetchSpec,
    JobBody,
    RunJob,
    RunResult,
    RunSpec,
    shaped,
)
from service.core.store import Job

MAX_NAME = 255
MAX_PATH = 1024
MAX_URL = 2048
MAX_ESTIMATORS = 100_000

Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
RelPath = Annotated[str, Field(min_length=1, max_length=MAX_PATH)]
CallbackUrl = Annotated[str, Field(max_length=MAX_URL, description="POSTed the job as JSON when it ends")]
Alias = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,31}$")]
ArgKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ArgValue = Annotated[StrictStr, StringConstraints(max_length=MAX_ARG_VALUE)] | StrictInt | StrictFloat | StrictBool


class ScheduleRun(BaseModel):
    """What a run trains (a schedule's runs too): every field optional, defaults from the AZML_* settings."""

    model_config = ConfigDict(extra="forbid")

    experiment: Name | None = None
    script: Name | None = None
    model: Name | None = None
    datapath: RelPath | None = None
    compute: Name | None = None
    estimators: int | None = Field(None, ge=1, le=MAX_ESTIMATORS)
    args: dict[ArgKey, ArgValue] = Field(
        default_factory=dict,
        max_length=MAX_SCRIPT_ARGS,
        description="extra script arguments, passed as --key=value (not data-path or estimators)",
    )


class RunRequest(ScheduleRun):
    """POST /runs: every field optional, defaults from the AZML_* settings."""

    callback_url: CallbackUrl | None = None


class FetchRequest(BaseModel):
    """POST /models/fetch."""

    model_config = ConfigDict(extra="forbid")

    model: Name | None = None
    version: int | None = Field(None, ge=1, le=2**31 - 1)
    use_best: bool = False
    alias: Alias | None = Field(None, description="fetch the version this alias names (e.g. production)")
    output_path: RelPath | None = None
    callback_url: CallbackUrl | None = None

    @model_validator(mode="after")
    def _one_choice(self) -> FetchRequest:
        if sum([self.version is not None, self.use_best, self.alias is not None]) > 1:
            raise ValueError("give one of version, use_best or alias")
        return self


EndpointName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9-]{2,31}$"),
    Field(description="3 to 32 lower-case letters, digits or '-', a letter first (Azure's rule for endpoint names)"),
]
MAX_SAMPLES = 20


class DeployRequest(BaseModel):
    """POST /deployments: a model version (by number or alias; the latest by default) to an endpoint."""

    model_config = ConfigDict(extra="forbid")

    endpoint: EndpointName
    model: Name | None = None
    version: int | None = Field(None, ge=1, le=2**31 - 1)
    alias: Alias | None = Field(None, description="deploy the version this alias names (e.g. production)")
    follow: bool = Field(False, description="roll to the alias's new holder each time it moves (needs alias)")
    traffic: int = Field(100, ge=1, le=100, description="percent of requests to the new version: below 100, a canary")
    samples: list[dict[str, Any]] | None = Field(
        None,
        max_length=MAX_SAMPLES,
        description="requests (POST /api/predict bodies) the new version must answer before traffic moves; "
        "default: one built from GET /api/predict/params",
    )
    callback_url: CallbackUrl | None = None

    @model_validator(mode="after")
    def _choice(self) -> DeployRequest:
        if self.version is not None and self.alias is not None:
            raise ValueError("give version or alias, not both")
        if self.follow and self.alias is None:
            raise ValueError("follow needs an alias to follow")
        if self.endpoint == "jobs":
            raise ValueError("an endpoint may not be named 'jobs' (GET /deployments/jobs/{id} reads a job)")
        return self


class RollbackRequest(BaseModel):
    """POST /deployments/{endpoint}/rollback."""

    model_config = ConfigDict(extra="forbid")

    samples: list[dict[str, Any]] | None = Field(None, max_length=MAX_SAMPLES)
    callback_url: CallbackUrl | None = None


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Literal["primary", "secondary"]


ScheduleName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class SchedulePromote(BaseModel):
    """After a run the schedule started registers a version: move this alias to it (through its gate)."""

    model_config = ConfigDict(extra="forbid")

    alias: Alias
    gate: GateRequest | None = None


class ScheduleRequest(BaseModel):
    """POST /schedules."""

    model_config = ConfigDict(extra="forbid")

    name: ScheduleName
    trigger: dict[str, Any] = Field(
        description='{"cron": "0 3 * * 1", "timezone": "Europe/London"}, {"every": "6h"} or {"on_data": "<path>"}'
    )
    run: ScheduleRun = Field(default_factory=lambda: ScheduleRun())
    promote: SchedulePromote | None = None
    missed: Literal["once", "skip"] = Field(
        "once", description="ticks missed while no replica ran: fire once on return, or skip them"
    )
    paused: bool = False


class ScheduleChange(BaseModel):
    """PATCH /schedules/{name}: any of these."""

    model_config = ConfigDict(extra="forbid")

    paused: bool | None = None
    trigger: dict[str, Any] | None = None
    run: ScheduleRun | None = None
    promote: SchedulePromote | None = None
    missed: Literal["once", "skip"] | None = None


class GateRequest(BaseModel):
    """The candidate must beat the alias's holder on `metric` by at least `min_delta`."""

    model_config = ConfigDict(extra="forbid")

    metric: Name
    direction: Literal["max", "min"] = "max"
    min_delta: float = Field(0.0, allow_inf_nan=False, ge=-1e12, le=1e12)


class AliasRequest(BaseModel):
    """PUT /models/{name}/aliases/{alias}: the version by number, by the run that made it, or the best."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(None, ge=1, le=2**31 - 1)
    run_id: Name | None = None
    use_best: bool = False
    reason: str | None = Field(None, max_length=500)
    gate: GateRequest | None = None

    @model_validator(mode="after")
    def _one_choice(self) -> AliasRequest:
        if sum([self.version is not None, self.run_id is not None, self.use_best]) != 1:
            raise ValueError("give exactly one of version, run_id or use_best")
        return self


class VersionChange(BaseModel):
    """PATCH /models/{name}/versions/{version}."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(None, max_length=2000)
    tags: dict[Annotated[str, StringConstraints(min_length=1, max_length=255)], ArgValue] | None = Field(
        None, max_length=50, description="the version's tags, replaced whole"
    )
    archived: bool | None = Field(None, description="archived: never chosen by latest, best or a new alias")


RunName = Annotated[str, StringConstraints(max_length=MAX_NAME, strip_whitespace=True, pattern=r"^[^\x00-\x1f\x7f]*$")]


class RunChange(BaseModel):
    """PATCH /runs/{id}: what people call a run and say of it; archive hides it from the runs list."""

    model_config = ConfigDict(extra="forbid")

    name: RunName | None = Field(None, description='a display name, searched by ?q= (exactly); "" removes it')
    description: str | None = Field(None, max_length=2000, description='notes on the run; "" removes them')
    tags: dict[Annotated[str, StringConstraints(min_length=1, max_length=255)], ArgValue] | None = Field(
        None, max_length=50, description="the run's tags, replaced whole ({} removes them)"
    )
    archived: bool | None = Field(None, description="archived: hidden from GET /runs unless ?archived=true")


class Decision(BaseModel):
    """POST /approvals/{id}/approve or /reject."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=500)


class DataFolderRequest(BaseModel):
    """POST /data with JSON: a folder on the server, under AZML_DATA_ROOT."""

    model_config = ConfigDict(extra="forbid")

    data_dir: RelPath
    callback_url: CallbackUrl | None = None


def _common(job: Job, backend: str) -> JobBody:
    spec = job.spec
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "error": job.error,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "callback_url": job.callback_url,
        "callback_status": job.callback_status,
        # one word for who started it; jobs stored before it was one kept a run's starter as started_by
        "created_by": spec.get("created_by") or spec.get("started_by"),
        "backend": backend,
    }


def render_run(job: Job, backend: str) -> RunJob:
    spec, result = shaped(job.spec, RunSpec), shaped(job.result, RunResult)
    return {
        **_common(job, backend),
        "experiment": spec["experiment"],
        "script": spec["script"],
        "model": spec["model"],
        "datapath": spec["datapath"],
        "compute": spec["compute"],
        "backend_run_id": job.backend_run_id,
        "params": {"estimators": spec.get("estimators"), "args": spec.get("args", {})},
        "metrics": result.get("metrics", {}),
        "model_version": result.get("model_version"),
        "data_version": result.get("data_version"),
        "script_digest": result.get("script_digest"),
        "imported": bool(spec.get("imported")),
        "studio_url": result.get("studio_url"),
        "cancel_requested": job.cancel_requested,
        "metrics_error": result.get("metrics_error"),
        "schedule": spec.get("schedule"),
        "name": spec.get("name"),
        "description": spec.get("description"),
        "tags": spec.get("tags") or {},
        "archived": bool(spec.get("archived")),
    }


def render_data(job: Job, backend: str) -> DataJob:
    spec, result = shaped(job.spec, DataSpec), shaped(job.result, DataResult)
    return {
        **_common(job, backend),
        "path": spec["path"],
        "source": spec["source"],
        "files": result.get("files"),
        "bytes": result.get("bytes"),
        "digest": result.get("digest"),
    }


def render_fetch(job: Job, backend: str) -> FetchJob:
    spec, result = shaped(job.spec, FetchSpec), shaped(job.result, FetchResult)
    return {
        **_common(job, backend),
        "model": spec["model"],
        "version": result.get("version", spec.get("version")),
        "use_best": spec.get("use_best", False),
        "alias": spec.get("alias"),
        "output_path": spec["output_path"],
        "files": result.get("files"),
        "metadata": result.get("metadata"),
    }


def render_deploy(job: Job, backend: str) -> DeployJob:
    spec, result = shaped(job.spec, DeploySpec), shaped(job.result, DeployResult)
    return {
        **_common(job, backend),
        "action": spec["action"],
        "endpoint": spec["endpoint"],
        "model": result.get("model", spec.get("model")),
        "version": result.get("version", spec.get("version")),
        "alias": spec.get("alias"),
        "follow": bool(spec.get("follow")),
        "slot": result.get("slot"),
        "traffic": result.get("traffic"),
        "previous": result.get("previous"),
        "smoke": result.get("smoke"),
        "trigger": spec.get("trigger"),
    }


RENDERERS: dict[str, Callable[[Job, str], JobBody]] = {
    "run": render_run,
    "data": render_data,
    "fetch": render_fetch,
    "deploy": render_deploy,
}


def run_title(body: dict[str, Any]) -> str:
    """How a run is named to people everywhere (the runs list, the run page's heading, chat): the id the
    scripts print and Azure ML studio shows (the service's own id until the backend has given one), then the
    name people gave it. app.js's runTitle() is the dashboard's copy of this rule."""
    shown = body.get("backend_run_id") or body["id"]
    return f'{shown} "{body["name"]}"' if body.get("name") else shown


def render(job: Job, backend: str) -> dict[str, Any]:
    """The job as a caller gets it (the shapes in job_kinds, which /openapi.json documents)."""
    return dict(RENDERERS[job.kind](job, backend))
