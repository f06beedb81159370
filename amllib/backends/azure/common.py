"""What both Azure ML backends share: one status table, one error mapping, retries, and the checks they both make.

The two SDKs report the same run statuses and fail in the same HTTP terms, so both backends
read them through this one module: a run status means the same on v1 and v2, and an auth
failure, a missing run or a refused request reads the same whichever SDK met it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from amllib.backends.azure.auth import scrub
from amllib.backends.azure.retry import ATTEMPTS, status_of, with_retry
from amllib.backends.base import Backend, RunSpec, RunStatus
from amllib.digest import TreeSummary, file_sha256, tree_digest
from amllib.errors import AmlError, BackendUnavailable, Conflict, InvalidInput, NotFound, quoted
from amllib.paths import safe_relpath
from amllib.settings import Settings

T = TypeVar("T")

# Azure ML's run statuses (REST JobStatus, v1 run history) in ours, the same for both SDKs. Not ended:
# a paused or canceling run still holds its compute and may yet change, so it counts as Running; an
# unknown status also counts as Running, never as ended. NotResponding (no heartbeat from its node) is
# ended, Failed, as azure-ai-ml's RunHistoryConstants.TERMINAL_STATUSES has it: counted Running, a run
# left so would be watched, and waited on, for ever.
STATUS = {
    "NotStarted": RunStatus.QUEUED,
    "Unapproved": RunStatus.QUEUED,
    "Queued": RunStatus.QUEUED,
    "Starting": RunStatus.PREPARING,
    "Provisioning": RunStatus.PREPARING,
    "Preparing": RunStatus.PREPARING,
    "Running": RunStatus.RUNNING,
    "NotResponding": RunStatus.FAILED,
    "Pausing": RunStatus.RUNNING,
    "Paused": RunStatus.RUNNING,
    "CancelRequested": RunStatus.RUNNING,
    "Unknown": RunStatus.RUNNING,
    "Finalizing": RunStatus.FINALIZING,
    "Completed": RunStatus.COMPLETED,
    "Failed": RunStatus.FAILED,
    "Canceled": RunStatus.CANCELED,
}
DATA_TAG, SCRIPT_TAG = "data_version", "script_digest"  # a run's tags and a model's properties, on both SDKs
SCALE_DOWN_SECONDS = 3600  # the seed: the cluster scales down after an hour idle
# AmlCompute's own rule for cluster names; the service refuses others up front instead of Azure failing later.
COMPUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,15}")


NOT_RESPONDING = (
    "Azure ML reports the run NotResponding (no heartbeat from its node): counted as ended, as azure-ai-ml does"
)


def run_error(status: str | None) -> str | None:
    """Why a run ended other than Completed, as far as its status says."""
    if status == "NotResponding":
        return NOT_RESPONDING
    return "the job failed on Azure ML; see its log" if map_status(status) == RunStatus.FAILED else None


def map_status(status: str | None) -> RunStatus:
    """An Azure ML status in our terms; one we do not know counts as still running, never as ended."""
    return STATUS.get(status or "", RunStatus.RUNNING)


def check_compute_name(name: str) -> str:
    if not isinstance(name, str) or not COMPUTE_NAME.fullmatch(name):
        raise InvalidInput(
            f"compute name {quoted(name)} is not one Azure ML accepts: 2 to 16 letters, digits or '-', "
            "starting with a letter"
        )
    return name


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(exc: BaseException) -> str:
    """The first line that says something (azure-ai-ml's messages start blank and carry terminal colours)."""
    text = _ANSI.sub("", str(getattr(exc, "message", None) or exc))
    lines = [line.strip() for line in scrub(text).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__


def _sdk_error_types() -> tuple[type[BaseException], ...]:
    """The exception bases of the Azure SDKs and their HTTP clients (imported only when an Azure backend runs)."""
    import requests
    from azure.core.exceptions import AzureError

    found: list[type[BaseException]] = [AzureError, requests.RequestException]
    try:
        from azureml.exceptions import AzureMLException
        from msrest.exceptions import ClientException

        found += [AzureMLException, ClientException]
    except ImportError:  # only azure-ai-ml installed
        pass
    return tuple(found)


def map_error(what: str, exc: BaseException, *, workspace: str | None, method: str) -> AmlError | None:
    """An SDK's error as ours (None for one that is not an SDK's: a bug, left to surface as it is).

    Auth failures name the workspace and method, never a secret; 404 is NotFound, 409 Conflict,
    400/422 and client-side validation InvalidInput; 403 and every other failure BackendUnavailable.
    """
    from azure.core.exceptions import ClientAuthenticationError, ResourceExistsError, ResourceNotFoundError

    if not isinstance(exc, _sdk_error_types()):
        return None
    message = _first_line(exc)
    auth_types: tuple[type[BaseException], ...] = (ClientAuthenticationError,)
    try:
        from azureml.exceptions import AuthenticationException

        auth_types += (AuthenticationException,)
    except ImportError:
        pass
    status = status_of(exc)
    if status == 416:
        return None  # a log read past its end: the caller's to handle
    if status is None and ("ModelNotFound" in message or _validation_kind(exc) == "RESOURCE_NOT_FOUND"):
        status = 404  # azureml-core's Model(...) says so in its message; azure-ai-ml's data.get(label=) in its kind
    if isinstance(exc, auth_types) or status == 401:
        return BackendUnavailable(f"{what}: could not authenticate to workspace {workspace!r} with {method}: {message}")
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        return NotFound(f"{what}: not found in workspace {workspace!r}")
    if type(exc).__name__ == "AssetPathException" or "Asset paths cannot be updated" in message:
        # A PUT of a version that exists with another path: Azure's 400 UserError, not a 409. azure-ai-ml means
        # to raise AssetPathException for it, but compares str(e) whole, which azure-core's multi-line
        # message never equals (seen through the replay): so the 400 comes through as it is.
        return Conflict(f"{what}: that version exists already in workspace {workspace!r}: {message}")
    if isinstance(exc, ResourceExistsError) or status == 409:
        return Conflict(f"{what}: it already exists in workspace {workspace!r}: {message}")
    if status == 403:
        return BackendUnavailable(f"{what}: the identity ({method}) is not permitted: {message}")
    if status in (400, 422) or _validation_kind(exc) is not None or _is_validation(exc):
        return InvalidInput(f"{what}: Azure ML refused it: {message}")
    where = f"Azure ML answered {status}" if status else "Azure ML failed"
    return BackendUnavailable(f"{what}: {where}: {message}")


def _validation_kind(exc: BaseException) -> str | None:
    """The error_type name (e.g. RESOURCE_NOT_FOUND) of an azure-ai-ml ValidationException, here or behind
    this one: the SDK's public calls re-raise it as a plain MlException (its __context__), as data.get does."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if _is_validation(seen):
            return getattr(getattr(seen, "error_type", None), "name", None)
        seen = seen.__cause__ or seen.__context__
    return None


def _is_validation(exc: BaseException) -> bool:
    """The v2 SDK's own checks before it sends anything (ValidationException, not an HTTP error)."""
    try:
        from azure.ai.ml.exceptions import ValidationException
    except ImportError:
        return False
    return isinstance(exc, ValidationException)


class AzureBackend(Backend):
    """The part of both Azure backends that is the same: calls retried and mapped, and the shared checks."""

    settings: Settings
    method: str = "the given client"  # how this backend authenticates, for error messages

    compute_timeout_minutes = 20  # how long a new cluster may take to be ready
    retry_attempts = ATTEMPTS  # tries of one call in with_retry; 1 where the SDK retries itself (retry.py)

    def __init__(
        self, settings: Settings, *, retry_delay: float, retry_sleep: Callable[[float], Any] | None = None
    ) -> None:
        """retry_delay: the first back-off of with_retry (tests use 0); retry_sleep: how it waits (tests
        record the waits Azure asked for instead of sleeping them)."""
        self.settings = settings
        self.retry_delay = retry_delay
        self.retry_sleep = retry_sleep

    def _call(self, what: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """fn(...) with transient failures retried (retry.py says by whom), and the SDKs' exceptions turned
        into ours."""
        try:
            return with_retry(
                what,
                lambda: fn(*args, **kwargs),
                attempts=self.retry_attempts,
                budget=self.settings.azure_retry_seconds,
                base_delay=self.retry_delay,
                sleep=self.retry_sleep,
            )
        except AmlError:
            raise
        except Exception as exc:
            if status_of(exc) in (401, 403):
                self._on_refused()
            mapped = map_error(what, exc, workspace=self.settings.workspace, method=self.method)
            if mapped is None:
                raise
            raise mapped from exc

    def call(self, what: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """_call for the backend's companions (its online endpoints): the same retries and error mapping."""
        return self._call(what, fn, *args, **kwargs)

    def _on_refused(self) -> None:
        """A call was refused (401/403): forget any credentials kept for reuse (a rotated key, an expired SAS)."""

    def script_digest(self, spec: RunSpec) -> str:
        return "sha256:" + file_sha256(self.settings.training_dir / spec.script)


def checked_source(src_dir: Path, target_path: str) -> tuple[str, TreeSummary]:
    """The upload's datastore path and the folder's summary; InvalidInput for a missing or empty folder."""
    target = str(safe_relpath(target_path, what="data path"))
    if not src_dir.is_dir():
        raise InvalidInput(f"data folder {str(src_dir)!r} does not exist or is not a folder")
    summary = tree_digest(src_dir)
    if summary.files == 0:
        raise InvalidInput(f"data folder {str(src_dir)!r} holds no files")
    return target, summary


def check_arrived(target: str, files: Iterable[tuple[str, Path]], arrived: dict[str, int]) -> None:
    """Every uploaded file is in the datastore whole (by size): an SDK's upload can give up and return quietly."""
    wrong = [rel for rel, full in files if arrived.get(f"{target}/{rel}") != full.stat().st_size]
    if wrong:
        raise BackendUnavailable(
            f"upload to {quoted(target)} is incomplete: {len(wrong)} file(s) missing or short in the "
            f"datastore, e.g. {quoted(wrong[0])}"
        )


def tail_text(text: str, tail: int | None) -> str:
    """The whole log, or its last `tail` lines, ending with a newline when there is any."""
    lines = text.splitlines()
    return "\n".join(lines if tail is None else lines[-tail:]) + ("\n" if lines else "")


def new_data_prefix(target: str) -> str:
    """Where one upload to `target` lands: its own prefix, never written again (time-ordered, then random).

    Data versions on Azure are immutable like the local backend's: a run (and, on v2, the Data asset
    version it names) points at its prefix for good, so a later upload can neither change nor mix
    with the files it reads. The training script still gets one folder as --data-path.
    """
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
    return f"{target}/{stamp}-{uuid.uuid4().hex[:8]}"


# A prefix new_data_prefix made (seconds only, as the first of them were named, or with microseconds).
PREFIX_SEGMENT = r"(\d{8}T\d{6})(?:\.(\d{6}))?Z-[0-9a-f]{8}"
_PREFIX_SEGMENT = re.compile(rf"/{PREFIX_SEGMENT}/?")


def datapath_of(source: str) -> str:
    """The datastore path a run's data came from, without the version prefix new_data_prefix added."""
    return _PREFIX_SEGMENT.sub("", source.rstrip("/"), count=1) if _PREFIX_SEGMENT.search(source) else source


def web_address(value: object) -> str | None:
    """An https:// address the SDK gave (a studio page), or None: never a link of another scheme."""
    return value if isinstance(value, str) and value.startswith("https://") else None
