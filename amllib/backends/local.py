"""The embedded `local` backend: folder datastore, process compute, SQLite registry.

Everything lives under AZML_HOME, so the whole upload → train → register → fetch
flow runs on one machine with no cloud account, and survives restarts of the
process that drives it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from amllib.backends import mlflow_files
from amllib.backends.base import (
    AliasBook,
    Backend,
    DataVersion,
    ModelVersion,
    Progress,
    RunInfo,
    RunSpec,
    tag_number,
    whole_lines,
)
from amllib.backends.local_compute import LocalCompute
from amllib.backends.local_datastore import LocalDatastore
from amllib.backends.local_registry import LocalRegistry
from amllib.digest import TreeSummary
from amllib.errors import DataNotFound, InvalidInput
from amllib.files import copy_files, copy_run_outputs, run_outputs
from amllib.names import check_name, check_script_args
from amllib.paths import check_script
from amllib.settings import Settings

_TAIL_BLOCK = 64 * 1024
_TAIL_CHUNK = 1 << 20  # a live tail sends at most this much at a time
_TAIL_MAX = 8 << 20  # a ?tail=N read looks at most this far back, however long the lines


class LocalBackend(Backend):
    """Backend on this machine's disk and processes."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        home = settings.home
        home.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.compute = LocalCompute(home, training_dir=settings.training_dir, max_nodes=settings.compute_max_nodes)
        self.datastore = LocalDatastore(home / "datastore", holder_alive=self.compute.holds_data)
        self.registry = LocalRegistry(home)

    # -- datastore -----------------------------------------------------------
    def upload_data(self, src_dir: Path, *, target_path: str, progress: Progress | None = None) -> DataVersion:
        return self.datastore.upload(src_dir, target_path=target_path, progress=progress)

    def staging_dir(self) -> Path:
        return self.datastore.staging_dir()

    def upload_staged(self, staged: Path, *, target_path: str, summary: TreeSummary | None = None) -> DataVersion:
        try:
            return self.datastore.adopt(staged, target_path=target_path, summary=summary)
        finally:
            shutil.rmtree(staged, ignore_errors=True)

    def discard_stale_staging(self, *, keep: set[Path]) -> int:
        """Also the half-written run folders of submits that died, and data versions nothing holds."""
        removed = self.datastore.discard_stale_staging(keep=keep) + self.compute.discard_stale_partials()
        removed += self.compute.empty_trash()
        return removed + self.datastore.collect()

    def current_data(self, target_path: str) -> DataVersion | None:
        try:
            return self.datastore.current(target_path)[1]
        except DataNotFound:
            return None

    def list_data(self) -> list[DataVersion]:
        found = []
        for path in self.datastore.paths():
            try:
                found.append(self.datastore.current(path)[1])
            except (DataNotFound, OSError, ValueError):
                continue  # switched or removed while we looked
        return found

    # -- compute -------------------------------------------------------------
    def ensure_compute(self, name: str) -> str:
        check_name(name, what="compute name")
        (self.compute.compute_root / name).mkdir(parents=True, exist_ok=True)
        return name

    def submit_run(self, spec: RunSpec) -> str:
        check_name(spec.experiment, what="experiment")
        check_name(spec.compute, what="compute name")
        check_script(self.settings.training_dir, spec.script)
        check_script_args(spec.args)
        if spec.estimators is not None and spec.estimators < 1:
            raise InvalidInput("estimators must be at least 1")
        run_id = self.compute.new_run_id(spec)
        data_dir, data = self.datastore.lease(spec.datapath, holder=run_id)
        try:
            return self.compute.start(spec, run_id=run_id, data_dir=data_dir, data_version=data.digest)
        except BaseException:
            self.datastore.release(data_dir, holder=run_id)
            raise

    def list_runs(self, *, created_after: float = 0.0, limit: int = 500) -> list[RunInfo]:
        return [
            self.compute.info(run_id) for run_id in self.compute.list_run_ids(created_after=created_after, limit=limit)
        ]

    def find_runs(self, experiment: str, *, tag: str, value: str) -> list[str]:
        return self.compute.find(experiment, tag=tag, value=value)

    def expired_runs(self, *, ended_before: float) -> list[str]:
        return self.compute.ended_before(ended_before)

    def discard_run(self, run_id: str) -> bool:
        return self.compute.discard(run_id)

    def get_run(self, run_id: str) -> RunInfo:
        info = self.compute.info(run_id)
        if info.status.terminal:  # the first to see it ended frees its data version, if nothing else holds it
            record, _ = self.compute.read(run_id)
            self.datastore.release(Path(record["data_dir"]), holder=run_id)
        logged = mlflow_files.read_tags(self.compute.run_dir(run_id))
        logged |= {e["name"]: e["value"] for e in self._metric_events(run_id) if e.get("kind") == "tag"}
        if logged:  # tags the script set itself, over those given at submit
            info = RunInfo(**{**info.__dict__, "tags": {**info.tags, **logged}})
        return info

    def _metric_events(self, run_id: str) -> list[dict[str, Any]]:
        path = self.compute.run_dir(run_id) / "metrics.jsonl"
        if not path.exists():
            return []
        events = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a killed script
        return events

    def get_metrics(self, run_id: str) -> dict[str, list[Any]]:
        """What the script logged through the v1 Run (captured) and through MLflow, together."""
        history = mlflow_files.read_metrics(self.compute.run_dir(run_id))
        for event in self._metric_events(run_id):
            if event.get("kind") not in ("tag", "property"):
                history.setdefault(event["name"], []).append(event["value"])
        return history

    def get_log(self, run_id: str, *, tail: int | None = None) -> str:
        path = self.compute.run_dir(run_id) / "driver.log"
        if not path.exists():
            return ""
        with path.open("rb") as handle:
            if tail is None:
                return handle.read().decode(errors="replace")
            return _tail_lines(handle, tail)

    def read_log(self, run_id: str, offset: int) -> tuple[str, int]:
        path = self.compute.run_dir(run_id) / "driver.log"
        if not path.exists():
            return "", offset
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if offset > size:
                return "", size  # past the end: resume at the end
            handle.seek(offset)
            return whole_lines(handle.read(_TAIL_CHUNK), offset, limit=_TAIL_CHUNK)

    def cancel_run(self, run_id: str) -> None:
        self.compute.cancel(run_id)

    def list_run_outputs(self, run_id: str) -> list[str]:
        return [rel for rel, _ in run_outputs(self.compute.run_dir(run_id))]

    def download_run_outputs(self, run_id: str, dest: Path) -> list[str]:
        self.compute.info(run_id)  # RunNotFound
        return copy_run_outputs(self.compute.run_dir(run_id), dest)

    # -- registry ------------------------------------------------------------
    def register_model(self, *, run_id: str, model_name: str, tags: dict[str, Any]) -> ModelVersion:
        info = self.compute.info(run_id)
        clean = {k: (tag_number(v) if k == "accuracy" and tag_number(v) is not None else v) for k, v in tags.items()}
        return self.registry.register(
            self.compute.run_dir(run_id),
            name=model_name,
            tags=clean,
            run_id=run_id,
            data_version=info.data_version,
            script_digest=info.script_digest,
        )

    def list_models(self) -> list[str]:
        return self.registry.list_models()

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        return self.registry.list_versions(name)

    def download_model(self, name: str, version: int, dest: Path) -> list[str]:
        return copy_files(self.registry.outputs_dir(name, version), dest)

    def read_aliases(self, name: str) -> AliasBook:
        return self.registry.read_aliases(name)

    def write_aliases(self, name: str, book: AliasBook, *, expected: str | None) -> bool:
        return self.registry.write_aliases(name, book, expected=expected)

    def update_version(
        self, name: str, version: int, *, description: str | None = None, tags: dict[str, Any] | None = None
    ) -> ModelVersion:
        return self.registry.update(name, version, description=description, tags=tags)


def _tail_lines(handle: Any, count: int) -> str:
    """The last `count` lines of a binary file, reading backwards in blocks: linear in what it reads, and it
    reads at most _TAIL_MAX bytes (a line longer than that is given as its last _TAIL_MAX bytes)."""
    if count <= 0:
        return ""
    handle.seek(0, 2)
    end = handle.tell()
    blocks: list[bytes] = []
    newlines = taken = 0
    while end > 0 and newlines <= count and taken < _TAIL_MAX:
        start = max(0, end - _TAIL_BLOCK, end - (_TAIL_MAX - taken))
        handle.seek(start)
        block = handle.read(end - start)
        blocks.append(block)
        newlines += block.count(b"\n")
        taken += len(block)
        end = start
    data = b"".join(reversed(blocks))
    if end > 0 and newlines <= count:  # cut by the byte limit: start at a whole character
        data = data[next((i for i, byte in enumerate(data[:4]) if byte & 0xC0 != 0x80), 0) :]
    lines = data.decode(errors="replace").splitlines()
    return "\n".join(lines[-count:]) + ("\n" if lines else "")
