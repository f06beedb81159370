"""The local datastore: data folders under AZML_HOME/datastore, replaced atomically.

Each upload is copied into a new folder under `.versions/`, and the datastore path
is a symlink switched to it with one rename, so readers see the old data or the
new, never half of either. A run is given the version folder itself, under a lease
(`.versions/<version>.leases/<run id>`) taken in the same locked step that reads
the link, so a later upload can neither change nor remove data under a run from
the moment it is submitted until it ends. collect() removes the versions nothing
references any more: no link points at them and no live run holds a lease.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from amllib.backends.base import DataVersion, Progress
from amllib.digest import TreeSummary, tree_digest
from amllib.errors import BackendUnavailable, DataNotFound, InvalidInput, UnsafePath, quoted
from amllib.files import list_files
from amllib.paths import safe_relpath

LEASE_GRACE = 60.0  # a lease whose run folder is not written yet counts as held for this long
_VERSION = re.compile(r"[0-9a-f]{32}")


class LocalDatastore:
    """Folders of data by path, each path pointing at an immutable version folder."""

    def __init__(self, root: Path, *, holder_alive: Callable[[str], bool | None] = lambda _: None) -> None:
        self.root = root
        self.versions = root / ".versions"
        self.versions.mkdir(parents=True, exist_ok=True)
        self._holder_alive = holder_alive

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One datastore-wide lock (every process on the machine) around reading, switching and removing."""
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _link(self, target_path: str) -> Path:
        rel = safe_relpath(target_path, what="data path")
        link = self.root / rel
        for parent in list(link.parents)[: len(rel.parts) - 1]:
            if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
                raise UnsafePath(f"data path {quoted(target_path)} lies inside another dataset ({parent.name})")
        if link.exists() and not link.is_symlink():
            raise InvalidInput(f"data path {quoted(target_path)} holds other datasets; choose another path")
        return link

    def upload(self, src_dir: Path, *, target_path: str, progress: Progress | None = None) -> DataVersion:
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
                _copy(full, dest, progress)
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
        data = DataVersion(
            path=str(safe_relpath(target_path, what="data path")),
            digest=summary.digest,
            files=summary.files,
            bytes=summary.bytes,
        )
        meta = {**data.__dict__, "created_at": time.time()}
        with self._locked():  # collect() must never see the new version before its link does
            os.replace(folder, final)
            (self.versions / f"{version_id}.json").write_text(json.dumps(meta))
            link.parent.mkdir(parents=True, exist_ok=True)
            tmp_link = link.parent / f".{version_id}.link"
            os.symlink(os.path.relpath(final, link.parent), tmp_link)
            os.replace(tmp_link, link)
        self.collect()
        return data

    def _target(self, link: Path) -> Path | None:
        return link.resolve() if link.is_symlink() else None

    def paths(self) -> list[str]:
        """Every datastore path that holds data now, sorted."""
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            if dirpath == str(self.root):
                dirnames[:] = [d for d in dirnames if d != ".versions"]
            for name in [*dirnames, *filenames]:
                entry = Path(dirpath, name)
                if entry.is_symlink() and not name.startswith("."):
                    found.append(entry.relative_to(self.root).as_posix())
        return sorted(found)

    def lease(self, target_path: str, *, holder: str) -> tuple[Path, DataVersion]:
        """current(target_path), held for `holder` (a run id) so no upload removes it until released."""
        with self._locked():
            folder, data = self.current(target_path)
            leases = folder.with_name(folder.name + ".leases")
            leases.mkdir(exist_ok=True)
            (leases / holder).touch()
        return folder, data

    def release(self, version_dir: Path, *, holder: str) -> None:
        """Give up holder's lease; the version goes as soon as nothing else references it."""
        lease = version_dir.with_name(version_dir.name + ".leases") / holder
        if lease.exists():
            lease.unlink(missing_ok=True)
            self.collect()

    def _lease_alive(self, lease: Path) -> bool:
        """Its run has not ended; or its run is not written yet and the lease is new (a submit in progress)."""
        alive = self._holder_alive(lease.name)
        if alive is not None:
            return alive
        try:
            return time.time() - lease.stat().st_mtime < LEASE_GRACE
        except OSError:
            return False

    def _linked(self) -> set[str]:
        """Names of the version folders some datastore path points at now."""
        names = set()
        for dirpath, dirnames, filenames in os.walk(self.root):
            if dirpath == str(self.root):
                dirnames[:] = [d for d in dirnames if d != ".versions"]
            for name in [*dirnames, *filenames]:
                entry = Path(dirpath, name)
                if entry.is_symlink():
                    names.add(Path(os.readlink(entry)).name)
        return names

    def collect(self) -> int:
        """Remove every version no link points at and no live run holds; how many went.

        A version is first renamed into `.trash-*` under the lock, then deleted outside it,
        so a kill in the middle leaves only trash that nothing serves and the next collect clears.
        """
        doomed = []
        with self._locked():
            linked = self._linked()
            for folder in self.versions.iterdir():
                if not _VERSION.fullmatch(folder.name) or folder.name in linked:
                    continue
                leases = folder.with_name(folder.name + ".leases")
                held = [lease for lease in leases.glob("*") if self._lease_alive(lease)] if leases.is_dir() else []
                if held:
                    continue
                trash = self.versions / f".trash-{folder.name}"
                os.replace(folder, trash)
                doomed.append(trash)
                folder.with_suffix(".json").unlink(missing_ok=True)
                shutil.rmtree(leases, ignore_errors=True)
            doomed += [t for t in self.versions.glob(".trash-*") if t not in doomed]
        for trash in doomed:
            shutil.rmtree(trash, ignore_errors=True)
        return len(doomed)

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


CHUNK = 1024 * 1024


def _copy(source: Path, dest: Path, progress: Progress | None) -> None:
    """shutil.copyfile, telling `progress` the bytes as each block is written (one large file moves too)."""
    if progress is None:
        shutil.copyfile(source, dest)
        return
    with source.open("rb") as reader, dest.open("wb") as writer:
        while block := reader.read(CHUNK):
            writer.write(block)
            progress(len(block), 0)
    progress(0, 1)
