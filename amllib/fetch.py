"""Fetch a model version's files plus metadata.json into a folder, for a model API to pick up."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from amllib.backends.base import Backend, ModelVersion, tag_number
from amllib.times import iso

BEST_BY = "accuracy"


@dataclass(frozen=True)
class FetchResult:
    """What was fetched, where, and whether --use-best had to fall back to latest."""

    model: ModelVersion
    files: list[str]
    metadata: dict[str, Any]
    fell_back_to_latest: bool


def build_metadata(model: ModelVersion, *, backend: str, files: list[str], alias: str | None = None) -> dict[str, Any]:
    """The metadata.json a model API reads at run time (`alias`: the alias it was fetched by, else null)."""
    data = asdict(model)
    data["created_at"] = iso(model.created_at)
    data["fetched_at"] = iso(time.time())
    data["backend"] = backend
    data["files"] = files
    data["alias"] = alias
    return data


def resolve(
    backend: Backend, name: str, *, version: int | None, use_best: bool, alias: str | None = None
) -> tuple[ModelVersion, bool]:
    """The version to fetch, and True if use_best found no accuracy tag and took the latest."""
    chosen = backend.resolve_version(name, version=version, best_by=BEST_BY if use_best else None, alias=alias)
    return chosen, use_best and tag_number(chosen.tags.get(BEST_BY)) is None


def fetch_model(
    backend: Backend,
    *,
    name: str,
    output_path: Path,
    version: int | None = None,
    use_best: bool = False,
    alias: str | None = None,
    attempt: str | None = None,
) -> FetchResult:
    """Download into a hidden sibling folder, then put it in place of output_path in one step.

    An existing output_path is swapped with the new folder atomically (Linux renameat2), so a
    reader sees the old version whole or the new one whole, and a kill at any moment leaves one
    of the two. `attempt` (a job id) names the sibling, so a retried fetch clears what its
    killed predecessor left. Where the swap is not available, files move one by one and
    metadata.json last.
    """
    chosen, fell_back = resolve(backend, name, version=version, use_best=use_best, alias=alias)
    output_path = output_path.resolve()
    output_path.parent.mkdir(parents=True, exist_ok=True)
    staging = output_path.parent / f".{output_path.name}.fetch-{attempt or uuid.uuid4().hex}"
    shutil.rmtree(staging, ignore_errors=True)  # a killed attempt's download, or the old version it swapped out
    staging.mkdir()
    try:
        files = sorted(backend.download_model(name, chosen.version, staging))
        metadata = build_metadata(chosen, backend=backend.name, files=files, alias=alias)
        (staging / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
        if not _moved_in(staging, output_path) and not (output_path.is_dir() and exchange(staging, output_path)):
            for rel in [*files, "metadata.json"]:
                (output_path / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / rel, output_path / rel)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # the download, or after a swap the old version
    return FetchResult(model=chosen, files=files, metadata=metadata, fell_back_to_latest=fell_back)


def _moved_in(staging: Path, output_path: Path) -> bool:
    """Rename the download to output_path if nothing (or an empty folder) is there; False if a folder is.

    Tried, not checked first: another fetch to the same path can put its folder there between a check
    and the rename (seen under 30 concurrent fetches to 5 paths), which then fails with ENOTEMPTY.
    """
    try:
        staging.rename(output_path)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return False
        raise
    return True


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where that is not available."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    done = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False  # the kernel or this file system cannot swap
    raise OSError(code, os.strerror(code), str(second))
