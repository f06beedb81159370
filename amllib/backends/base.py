"""The Backend interface: its docstrings are the contract every backend keeps.

A backend owns three things: a datastore (folders of data by path), compute
(training runs of a script from training/), and a model registry (numbered
versions of named models with tags). The orchestration in amllib.training and
amllib.fetch is written once against this interface.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from amllib.digest import TreeSummary
from amllib.errors import ModelNotFound, quoted
from amllib.names import check_script_args

Progress = Callable[[int, int], object]  # told (bytes sent, files finished) since its last call


class RunStatus(StrEnum):
    """Azure ML's names for the states of a run, which every backend reports."""

    QUEUED = "Queued"
    PREPARING = "Preparing"
    RUNNING = "Running"
    FINALIZING = "Finalizing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED})


@dataclass(frozen=True)
class DataVersion:
    """What an upload put at a datastore path."""

    path: str
    digest: str
    files: int
    bytes: int


@dataclass(frozen=True)
class RunSpec:
    """What to train: the script, where its data is, and its arguments."""

    script: str
    experiment: str
    datapath: str
    compute: str
    estimators: int | None = None
    args: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def script_arguments(self, data_path: str) -> list[str]:
        """The command line the training script gets, the same on every backend.

        Extra args come as single `--name=value` words, so no value is ever read as an
        option, and the service's own options come last, so argparse keeps their values.
        """
        check_script_args(self.args)
        argv = [f"--{name}={value}" for name, value in self.args.items()]
        argv += ["--data-path", data_path]
        if self.estimators is not None:
            argv += ["--estimators", str(self.estimators)]
        return argv


def parse_script_arguments(argv: list[str]) -> tuple[str | None, int | None, dict[str, str]]:
    """(data path, estimators, extra args) back from a command line RunSpec.script_arguments made."""
    words, options, args = iter(argv), {}, {}
    for word in words:
        if word in ("--data-path", "--estimators"):
            options[word] = next(words, "")
        elif word.startswith("--"):
            name, _, value = word.removeprefix("--").partition("=")
            args[name] = value
    estimators = options.get("--estimators", "")
    return options.get("--data-path"), int(estimators) if estimators.isdigit() else None, args


@dataclass(frozen=True)
class RunInfo:
    """A run as the backend sees it now."""

    run_id: str
    status: RunStatus
    experiment: str
    script: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    error: str | None = None
    data_version: str | None = None
    script_digest: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    datapath: str | None = None
    compute: str | None = None
    estimators: int | None = None
    args: dict[str, str] = field(default_factory=dict)
    studio_url: str | None = None  # the run's page in Azure ML studio (None on the local backend)


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model."""

    name: str
    version: int
    tags: dict[str, Any]
    run_id: str | None
    created_at: float
    data_version: str | None = None
    script_digest: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class AliasBook:
    """A model's aliases, their history and its archived versions, as one document the backend keeps.

    aliases: alias → {"version", "since", "by", "reason"}; history: every change, oldest first
    ({"alias", "from", "to", "at", "by", "reason", "gate", "approved_by"}); archived: version numbers never
    chosen by latest, best or a new alias. `token` names the state read (None: the model has none
    yet), for write_aliases' compare-and-set. amllib/promotion.py makes every change; backends only keep it.
    """

    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    archived: list[int] = field(default_factory=list)
    token: str | None = None

    def holder(self, alias: str) -> int | None:
        found = self.aliases.get(alias)
        return int(found["version"]) if found else None

    def document(self) -> dict[str, Any]:
        return {"aliases": self.aliases, "history": self.history, "archived": sorted(self.archived)}


class Backend(ABC):
    """Datastore, compute and registry of one place where training happens."""

    name: str = "abstract"

    # -- datastore -----------------------------------------------------------
    @abstractmethod
    def upload_data(self, src_dir: Path, *, target_path: str, progress: Progress | None = None) -> DataVersion:
        """Upload every file under `src_dir` to `target_path` in the datastore.

        `progress(sent, finished)` is told the bytes sent and the files finished since its last call, as
        the bytes go (for a progress display; a backend whose SDK uploads a folder at once tells it
        once, at the end). The upload replaces
        what was there. Returns the new DataVersion whose digest is
        amllib.digest.tree_digest(src_dir). Raises UnsafePath for a target path that
        leaves the datastore, InvalidInput for an empty or missing folder,
        BackendUnavailable if the datastore fails; on failure the old data stays.
        """

    def staging_dir(self) -> Path:
        """A new empty folder to receive an upload before upload_staged() (default: a temp folder)."""
        return Path(tempfile.mkdtemp(prefix="aml-upload-"))

    def upload_staged(self, staged: Path, *, target_path: str, summary: TreeSummary | None = None) -> DataVersion:
        """Like upload_data, for a folder from staging_dir() that is consumed (moved or deleted).

        `summary`, when the caller already hashed the files while writing them, saves reading
        them again. Backends on the same disk override this to move instead of copy.
        """
        try:
            return self.upload_data(staged, target_path=target_path)
        finally:
            shutil.rmtree(staged, ignore_errors=True)

    def discard_stale_staging(self, *, keep: set[Path]) -> int:
        """Remove staging_dir() folders of uploads that died long ago, except `keep`; how many went."""
        return 0

    def current_data(self, target_path: str) -> DataVersion | None:
        """What the last upload put at target_path, if this backend keeps that record (else None)."""
        return None

    @abstractmethod
    def list_data(self) -> list[DataVersion]:
        """Every datastore path an upload of this tool made, with the data version now there, sorted by path."""

    # -- compute ---------------------------------------------------------------
    @abstractmethod
    def ensure_compute(self, name: str) -> str:
        """Make sure compute target `name` exists, creating it from the settings; returns its name.

        Raises InvalidInput for a bad name, Conflict if a target of that name is of
        the wrong kind, BackendUnavailable if it cannot be created in time.
        """

    @abstractmethod
    def submit_run(self, spec: RunSpec) -> str:
        """Start a run of `spec.script` (a file directly in training/) and return its run id.

        The source folder is snapshotted at submit time. The script is called with
        `spec.script_arguments(<where the data is mounted>)`. Returns without waiting
        for the run. Raises InvalidInput/UnsafePath for a bad script or path,
        DataNotFound if the data path holds nothing, BackendUnavailable on failure.
        """

    @abstractmethod
    def find_runs(self, experiment: str, *, tag: str, value: str) -> list[str]:
        """Ids of the experiment's runs submitted with tags[tag] == value (finds a run again after a crash)."""

    @abstractmethod
    def list_runs(self, *, created_after: float = 0.0, limit: int = 500) -> list[RunInfo]:
        """Runs of every experiment created after `created_after` (epoch seconds), oldest first, at most `limit`.

        Whoever started them: this service, the scripts, or another tool. Each RunInfo
        carries the run's submit tags (a service-started run has `job_id`) and, where
        the backend knows them, its datapath, compute, estimators and args.
        """

    def expired_runs(self, *, ended_before: float) -> list[str]:
        """Ids of runs whose files this backend keeps on this machine and that ended before that time.

        The retention sweep removes them (discard_run). Backends whose runs live in the cloud
        return none: Azure ML keeps its run history by the workspace's own policy.
        """
        return []

    def prune_data(self, *, superseded_before: float) -> int:
        """Remove data versions replaced before that time that no unfinished run holds; how many went.

        The retention sweep calls it. The local datastore removes a version as soon as nothing
        holds it (its collector), so it has none to prune here; Azure backends prune their prefixes.
        """
        return 0

    def discard_run(self, run_id: str) -> bool:
        """Remove an ended run's files (snapshot, logs, outputs) from this machine; whether anything went.

        Never an unfinished run (False), never a registered model's files (the registry holds
        its own copy). Cloud backends keep their runs and return False.
        """
        return False

    @abstractmethod
    def get_run(self, run_id: str) -> RunInfo:
        """The run's current status and details. Raises RunNotFound for an unknown id.

        A run whose executor vanished is reported Failed with a reason, never left
        non-terminal for ever.
        """

    @abstractmethod
    def get_metrics(self, run_id: str) -> dict[str, list[Any]]:
        """Every metric the run logged, name → values in the order logged."""

    @abstractmethod
    def get_log(self, run_id: str, *, tail: int | None = None) -> str:
        """The run's output so far (stdout and stderr), or its last `tail` lines."""

    def read_log(self, run_id: str, offset: int) -> tuple[str, int]:
        """The whole lines of the run's log from byte `offset` on, and the offset after them (for a live tail).

        An offset past the log's end (a client's stale or made-up resume point) gives no text and the
        end's offset, so the tail resumes there.
        """
        data = self.get_log(run_id).encode()
        if offset > len(data):
            return "", len(data)
        return whole_lines(data[offset:], offset)

    @abstractmethod
    def cancel_run(self, run_id: str) -> None:
        """Ask the run to stop; it ends Canceled. A finished run is left as it is."""

    @abstractmethod
    def list_run_outputs(self, run_id: str) -> list[str]:
        """Files the run wrote under outputs/, as paths relative to outputs/."""

    @abstractmethod
    def download_run_outputs(self, run_id: str, dest: Path) -> list[str]:
        """Write the files the run wrote under outputs/ into the empty folder `dest` (what a model
        registered from the run would hold, registered or not). Returns the written paths relative to
        dest, an empty list for a run that wrote none. Raises RunNotFound."""

    def wait_for_run(self, run_id: str, *, timeout: float | None = None, poll: float = 0.5) -> RunInfo:
        """Poll get_run until the run ends or `timeout` seconds pass; returns the last RunInfo."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = self.get_run(run_id)
            if info.status.terminal or (deadline is not None and time.monotonic() >= deadline):
                return info
            time.sleep(poll)

    # -- registry ----------------------------------------------------------------
    @abstractmethod
    def register_model(self, *, run_id: str, model_name: str, tags: dict[str, Any]) -> ModelVersion:
        """Register the run's outputs/ as the next version (1, 2, 3…) of `model_name`.

        Two registrations at the same moment never get the same version. A run is
        registered once per model name: if a version of `model_name` was already made
        from `run_id` (a crash came between registering and recording it), that version
        is returned and no new one is made. Raises RunNotFound, InvalidInput if the run
        has no outputs/.
        """

    @abstractmethod
    def list_models(self) -> list[str]:
        """Names of every registered model, sorted."""

    @abstractmethod
    def list_model_versions(self, name: str) -> list[ModelVersion]:
        """Every version of `name`, oldest first; an empty list for an unknown model."""

    @abstractmethod
    def download_model(self, name: str, version: int, dest: Path) -> list[str]:
        """Write the files of the version's outputs/ into the empty folder `dest`.

        Returns the written paths relative to dest. Raises ModelNotFound.
        """

    @abstractmethod
    def read_aliases(self, name: str) -> AliasBook:
        """The model's alias book as it is now (an empty one, token None, for a model that has none).

        Every reader of the backend (the scripts, the service, other replicas) sees the same book.
        """

    @abstractmethod
    def write_aliases(self, name: str, book: AliasBook, *, expected: str | None) -> bool:
        """Replace the model's alias book in one step, only if it is still the one read with token `expected`
        (None: there was none); False when another writer changed it first (read again and retry). A
        reader sees the old book whole or the new one whole, never a mix."""

    @abstractmethod
    def update_version(
        self, name: str, version: int, *, description: str | None = None, tags: dict[str, Any] | None = None
    ) -> ModelVersion:
        """Set a version's description and/or tags (tags replace the version's tags whole). Raises
        ModelNotFound."""

    def mirror_aliases(self, name: str, book: AliasBook, versions: set[int]) -> None:
        """Make the registry's own marks of these versions match the book (nothing by default).

        The book is the truth every reader resolves by; a registry with marks of its own (azureml-v2:
        a version's `stage` and `is_archived`) shows them to its own tools (the studio, `az ml`).
        Idempotent: a mirror that failed is made good by the next change of the same versions.
        """
        return None

    def versions_of_run(self, run_id: str) -> list[ModelVersion]:
        """The model versions registered from run_id (any model name), oldest first."""
        return [v for name in self.list_models() for v in self.list_model_versions(name) if v.run_id == run_id]

    def resolve_version(
        self, name: str, *, version: int | None = None, best_by: str | None = None, alias: str | None = None
    ) -> ModelVersion:
        """A given version, the holder of an alias, the best by a numeric tag, or else the latest.

        Latest and best never choose an archived version (the alias book's). `best_by` with no version
        carrying that tag as a number falls back to the latest (callers warn). Raises ModelNotFound for an
        unknown model, version or alias, or when every version is archived.
        """
        versions = self.list_model_versions(name)
        if not versions:
            raise ModelNotFound(f"model {quoted(name)} not found")
        if version is None and alias is not None:
            version = self.read_aliases(name).holder(alias)
            if version is None:
                raise ModelNotFound(f"model {quoted(name)} has no alias {quoted(alias)}")
        if version is not None:
            for candidate in versions:
                if candidate.version == version:
                    return candidate
            raise ModelNotFound(f"model {quoted(name)} has no version {version} (latest is {versions[-1].version})")
        archived = set(self.read_aliases(name).archived)
        live = [v for v in versions if v.version not in archived]
        if not live:
            raise ModelNotFound(f"every version of model {quoted(name)} is archived")
        if best_by:
            scored = [(tag_number(v.tags.get(best_by)), v) for v in live]
            ranked = [(score, v.version, v) for score, v in scored if score is not None]
            if ranked:
                return max(ranked, key=lambda item: (item[0], item[1]))[2]
        return live[-1]


def whole_lines(chunk: bytes, offset: int, *, limit: int | None = None) -> tuple[str, int]:
    """The chunk up to its last newline, decoded, and the offset after that newline.

    A chunk that filled the read `limit` without any newline (one line longer than a read) is given
    whole, cut at a character boundary: waiting for its newline would stall the tail for good.
    """
    end = chunk.rfind(b"\n") + 1
    if end == 0 and limit is not None and len(chunk) >= limit:
        end = len(chunk)
        while end > len(chunk) - 4 and end > 0 and chunk[end - 1] & 0xC0 == 0x80:
            end -= 1  # inside a multi-byte character: leave its start for the next read
        if end > 0 and chunk[end - 1] >= 0xC0:
            end -= 1  # the first byte of a character whose rest is not here yet
    return chunk[:end].decode(errors="replace"), offset + end


def epoch_seconds(value: Any) -> float | None:
    """A time as the Azure SDKs give it (datetime or ISO text, maybe with Z) in epoch seconds; None if unreadable."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def numeric_accuracy(tags: dict[str, Any]) -> dict[str, Any]:
    """A registry's string tags with accuracy as the number it was (Azure keeps tag values as strings)."""
    tags = dict(tags or {})
    if tag_number(tags.get("accuracy")) is not None:
        tags["accuracy"] = tag_number(tags["accuracy"])
    return tags


def tag_number(value: Any) -> float | None:
    """A tag value as a finite float, or None: Azure keeps tags as strings; NaN and ±Infinity are no score."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None
