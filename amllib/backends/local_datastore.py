"""The local datastore: data folders under AZML_HOME/datastore, replaced atomically.

Each upload is copied into a new folder under `.versions/`, and the datastore path
is a symlink switched to it with one rename, so readers see the old data or the
new, never half of either. Runs are given the version folder itself, so a later
upload does not change data under a running script.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from amllib.backends.base import DataVersion
from amllib.digest import TreeSummary, list_files, tree_digest
from amllib.errors import BackendUnavailable, DataNotFound, InvalidInput, UnsafePath, quoted
from amllib.paths import safe_relpath


class LocalDatastore:
    """Folders of data by path, each path pointing at an immutable version folder."""

    def __init__(self, root: Path, *, in_use: Callable[[Path], bool] = lambda _: False) -> None:
        self.root = root
        self.versions = root / ".versions"
        self.versions.mkdir(parents=True, exist_ok=True)
        self._in_use = in_use

    def _link(self, target_path: str) -> Path:
        rel = safe_relpath(target_path, what="data path")
        link = self.root / rel
        for parent in list(link.parents)[: len(rel.parts) - 1]:
            if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
                raise UnsafePath(f"data path {quoted(target_path)} lies inside another dataset ({parent.name})")
        if link.exists() and not link.is_symlink():
            raise InvalidInput(f"data path {quoted(target_path)} holds other datasets; choose another path")
        return link

    def upload(self, src_dir: Path, *, target_path: str) -> DataVersion:
        """Copy src_dir into a new version and switch target_path to it in one rename."""
        link = self._link(target_path)
        if not src_dir.is_dir():
            raise InvalidInput(f"data folder {str(src_dir)!r} does not exist or is not a folder")
        files = list_files(src_dir)
        if not files:
            raise InvalidInput(f"data folder {str(src_dir)!r} holds no files")
        version_id = uuid.uuid4().hex
        staging = self.versions / f"{version_id}.partial"
        try:
            for rel, full in files:
                dest = staging / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(full, dest)
            return self.adopt(staging, target_path=target_path, link=link, version_id=version_id)
        except OSError as exc:
            raise BackendUnavailable(f"upload to {quoted(target_path)} failed: {exc.strerror or exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def adopt(
        self,
        folder: Path,
        *,
        target_path: str,
        link: Path | None = None,
        version_id: str | None = None,
        summary: TreeSummary | None = None,
    ) -> DataVersion:
        """Make an already-written folder (moved, not copied) the data at target_path."""
        link = link or self._link(target_path)
        version_id = version_id or uuid.uuid4().hex
        summary = summary or tree_digest(folder)
        if summary.files == 0:
            raise InvalidInput("the upload holds no files")
        final = self.versions / version_id
        os.replace(folder, final)
        data = DataVersion(
            path=str(safe_relpath(target_path, what="data path")),
            digest=summary.digest,
            files=summary.files,
            bytes=summary.bytes,
        )
        meta = {**data.__dict__, "created_at": time.time()}
        (self.versions / f"{version_id}.json").write_text(json.dumps(meta))
        previous = self._target(link)
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp_link = link.parent / f".{link.name}.{version_id}.link"
        os.symlink(os.path.relpath(final, link.parent), tmp_link)
        os.replace(tmp_link, link)
        if previous is not None and not self._in_use(previous):
            self._discard(previous)
        return data

    def _target(self, link: Path) -> Path | None:
        return link.resolve() if link.is_symlink() else None

    def _discard(self, version_dir: Path) -> None:
        shutil.rmtree(version_dir, ignore_errors=True)
        version_dir.with_suffix(".json").unlink(missing_ok=True)

    def current(self, target_path: str) -> tuple[Path, DataVersion]:
        """The version folder and DataVersion now at target_path."""
        link = self._link(target_path)
        folder = self._target(link)
        if folder is None or not folder.is_dir():
            raise DataNotFound(f"no data at datastore path {quoted(target_path)}; upload it first")
        meta = json.loads(folder.with_suffix(".json").read_text())
        meta.pop("created_at", None)
        return folder, DataVersion(**meta)

    def discard_stale_staging(self, *, keep: set[Path], older_than: float = 3600.0) -> int:
        """Remove staging folders left by uploads that died (not in keep, untouched for older_than s)."""
        removed = 0
        for folder in self.versions.glob("*.partial"):
            try:
                stale = time.time() - folder.stat().st_mtime > older_than
            except OSError:
                continue
            if stale and folder.resolve() not in keep:
                shutil.rmtree(folder, ignore_errors=True)
                folder.with_name(folder.name + ".zip").unlink(missing_ok=True)
                removed += 1
        return removed

    def staging_dir(self) -> Path:
        """A fresh folder on the datastore's disk to unpack an upload into before adopt()."""
        folder = self.versions / f"{uuid.uuid4().hex}.partial"
        folder.mkdir()
        return folder
