"""Fetch a model version's files plus metadata.json into a folder, for a model API to pick up."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amllib.backends.base import Backend, ModelVersion, tag_number

BEST_BY = "accuracy"


@dataclass(frozen=True)
class FetchResult:
    """What was fetched, where, and whether --use-best had to fall back to latest."""

    model: ModelVersion
    files: list[str]
    metadata: dict[str, Any]
    fell_back_to_latest: bool


def iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat()


def build_metadata(model: ModelVersion, *, backend: str, files: list[str]) -> dict[str, Any]:
    """The metadata.json a model API reads at run time."""
    data = asdict(model)
    data["created_at"] = iso(model.created_at)
    data["fetched_at"] = datetime.now(UTC).isoformat()
    data["backend"] = backend
    data["files"] = files
    return data


def resolve(backend: Backend, name: str, *, version: int | None, use_best: bool) -> tuple[ModelVersion, bool]:
    """The version to fetch, and True if use_best found no accuracy tag and took the latest."""
    chosen = backend.resolve_version(name, version=version, best_by=BEST_BY if use_best else None)
    return chosen, use_best and tag_number(chosen.tags.get(BEST_BY)) is None


def fetch_model(
    backend: Backend, *, name: str, output_path: Path, version: int | None = None, use_best: bool = False
) -> FetchResult:
    """Download into a hidden sibling folder, then move the files into output_path.

    A failure before the move leaves output_path as it was; metadata.json moves last,
    so a reader that sees the new metadata sees the new files.
    """
    chosen, fell_back = resolve(backend, name, version=version, use_best=use_best)
    output_path = output_path.resolve()
    output_path.parent.mkdir(parents=True, exist_ok=True)
    staging = output_path.parent / f".{output_path.name}.fetch-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        files = sorted(backend.download_model(name, chosen.version, staging))
        metadata = build_metadata(chosen, backend=backend.name, files=files)
        (staging / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
        if not output_path.exists():
            staging.rename(output_path)
        else:
            for rel in [*files, "metadata.json"]:
                (output_path / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / rel, output_path / rel)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return FetchResult(model=chosen, files=files, metadata=metadata, fell_back_to_latest=fell_back)
