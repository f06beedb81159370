"""The three kinds of job in one table: what each one's spec and result hold, and the JSON a caller gets.

A job's spec (what was asked) and result (what came of it) are stored as JSON. The TypedDicts here
are their shapes, so every read goes through shaped() and mypy checks each key; the bodies
the API answers with (RunJob, DataJob, FetchJob) are defined once, here: schemas.render builds them
and /openapi.json documents them from the same classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, TypeVar, cast

from pydantic import Field
from typing_extensions import TypedDict  # pydantic reads TypedDicts from typing_extensions on 3.11

from service.core.store import Job

T = TypeVar("T")


@dataclass(frozen=True)
class KindInfo:
    noun: str  # how messages name a job of this kind
    path: str  # where the API serves one: path + job id


KINDS: dict[str, KindInfo] = {
    "run": KindInfo(noun="run", path="/runs/"),
    "data": KindInfo(noun="data upload", path="/data/"),
    "fetch": KindInfo(noun="fetch", path="/models/fetch/"),
    "deploy": KindInfo(noun="deployment", path="/deployments/jobs/"),
}


def location(job: Job) -> str:
    return KINDS[job.kind].path + job.id


# -- what each kind stores ---------------------------------------------------------------------
class Notify(TypedDict):
    """Where a chat-started run's end is announced (service/chatops/notices.py)."""

    platform: str
    at: float  # when the command came (a notice says how long the run took from there)
    response_url: NotRequired[str]  # Slack and Mattermost answer there; Teams through its webhook


class _Asked(TypedDict):
    created_by: NotRequired[str]  # the token (or chat user) that asked; set by actions.create_job


class RunSpec(_Asked):
    experiment: str
    script: str
    model: str | None  # None for a run started elsewhere and imported
    datapath: str
    compute: str
    estimators: int | None
    args: dict[str, str]
    notify: NotRequired[Notify]
    imported: NotRequired[bool]  # started elsewhere (scripts, studio), brought in by run_import
    schedule: NotRequired[dict[str, str]]  # {"name", "fire"}: the schedule that started it
    data_version: NotRequired[str]  # the data version it must read (a data trigger's): refused if replaced
    name: NotRequired[str]  # what people call it (PATCH /runs/{id})
    description: NotRequired[str]
    tags: NotRequired[dict[str, str]]
    archived: NotRequired[bool]


class RunResult(TypedDict, total=False):
    metrics: dict[str, Any]
    data_version: str | None
    script_digest: str | None
    model_version: dict[str, Any] | None
    studio_url: str  # the run's Azure ML studio page, when the backend gives one
    metrics_error: str  # why its metrics could not be read (never "none logged")
    log_tail: str
    notice: str  # how the chat notice went


class DataSpec(_Asked):
    path: str
    source: Literal["folder", "archive", "multipart"]
    data_dir: NotRequired[str]  # source "folder": a folder under AZML_DATA_ROOT
    staging: NotRequired[str]  # an uploaded body, unpacked here until the job commits it
    summary: NotRequired[dict[str, Any]]  # its TreeSummary
    notify: NotRequired[Notify]


class DataResult(TypedDict, total=False):
    files: int
    bytes: int
    digest: str
    notice: str


class FetchSpec(_Asked):
    model: str
    version: int | None
    use_best: bool
    alias: NotRequired[str | None]
    output_path: str
    notify: NotRequired[Notify]


class FetchResult(TypedDict, total=False):
    version: int
    files: list[str]
    metadata: dict[str, Any]
    fell_back_to_latest: bool
    notice: str


class DeploySpec(_Asked):
    action: Literal["deploy", "rollback"]
    endpoint: str
    model: NotRequired[str]
    version: NotRequired[int | None]
    alias: NotRequired[str | None]
    follow: NotRequired[bool]
    traffic: NotRequired[int]
    samples: NotRequired[list[dict[str, Any]] | None]
    trigger: NotRequired[str]  # what started it when not a caller: "alias production moved to 7"


class DeployResult(TypedDict, total=False):
    slot: str
    model: str
    version: int
    traffic: dict[str, int]
    previous: dict[str, Any] | None
    smoke: dict[str, Any]
    notice: str


def shaped(stored: dict[str, Any], shape: type[T]) -> T:
    """A job's stored spec or result read as its kind's shape: shaped(job.spec, RunSpec)["experiment"]."""
    return cast(T, stored)


def notify_of(job: Job) -> Notify | None:
    return cast(Notify | None, job.spec.get("notify"))


# -- what a caller gets --------------------------------------------------------------------------
Time = Annotated[str | None, Field(description="ISO 8601, UTC")]


class JobBody(TypedDict):
    id: str
    kind: str
    status: Annotated[str, Field(description="Queued, Preparing, Running, Finalizing, Completed, Failed or Canceled")]
    error: str | None
    created_at: Time
    started_at: Time
    finished_at: Time
    callback_url: str | None
    callback_status: str | None
    created_by: Annotated[
        str | None,
        Field(description="who started it: a token's name, a chat user, or for a run started elsewhere its tag"),
    ]
    backend: str


class RunJob(JobBody):
    experiment: str
    script: str
    model: Annotated[str | None, Field(description="the model its outputs register as; null for an imported run")]
    datapath: str | None
    compute: str | None
    backend_run_id: str | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    model_version: dict[str, Any] | None
    data_version: str | None
    script_digest: str | None
    imported: Annotated[bool, Field(description="started elsewhere (scripts, studio) and brought in by the service")]
    studio_url: Annotated[str | None, Field(description="the run's page in Azure ML studio; null on the local backend")]
    cancel_requested: Annotated[
        bool, Field(description="a cancel was asked: the run ends Canceled once the backend has stopped it")
    ]
    metrics_error: Annotated[
        str | None,
        Field(description="why the run's metrics could not be read (null: read, or none logged)"),
    ]
    schedule: Annotated[
        dict[str, str] | None, Field(description="the schedule that started it: {name, fire} (null: a caller did)")
    ]
    name: Annotated[str | None, Field(description="the display name people gave it (PATCH /runs/{id})")]
    description: Annotated[str | None, Field(description="notes on the run")]
    tags: Annotated[dict[str, str], Field(description="the run's own tags (not the model version's)")]
    archived: Annotated[bool, Field(description="hidden from GET /runs unless ?archived=true")]


class DataJob(JobBody):
    path: str
    source: str
    files: int | None
    bytes: int | None
    digest: str | None


class FetchJob(JobBody):
    model: str
    version: int | None
    use_best: bool
    alias: Annotated[str | None, Field(description="the alias the version was fetched by")]
    output_path: str
    files: list[str] | None
    metadata: dict[str, Any] | None


class DeployJob(JobBody):
    action: Annotated[str, Field(description="deploy, or rollback to the version kept beside the live one")]
    endpoint: str
    model: str | None
    version: Annotated[int | None, Field(description="the version asked for (once resolved: the one deployed)")]
    alias: str | None
    follow: bool
    slot: Annotated[str | None, Field(description="the deployment (blue or green) the version went to")]
    traffic: Annotated[dict[str, int] | None, Field(description="the endpoint's traffic map once done, per slot")]
    previous: Annotated[dict[str, Any] | None, Field(description="what served before: slot, version")]
    smoke: Annotated[dict[str, Any] | None, Field(description="the smoke test before traffic moved")]
    trigger: Annotated[str | None, Field(description="what started it, when not a caller (an alias it follows)")]
