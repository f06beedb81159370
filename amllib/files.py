"""Listing and moving the regular files of a folder tree (links skipped), the same way everywhere.

A run's outputs/ get stricter treatment (run_outputs, copy_run_output): they are written by a
training script, which may have made outputs/ itself, a folder in it or a file a link to
something outside its run (AZML_HOME's session key, the registry). Only what lies in the run's
own folder, reached without a symbolic link at any step, and has no other name (a hard link)
is ever listed, copied, archived or registered.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from amllib.errors import UnsafePath
from amllib.paths import safe_entry

log = logging.getLogger("amllib")


def list_files(folder: Path) -> list[tuple[str, Path]]:
    """Regular files under folder as (posix relative path, path), sorted; links are skipped."""
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        for name in filenames:
            full = Path(dirpath, name)
            if full.is_symlink() or not full.is_file():
                continue
            found.append((full.relative_to(folder).as_posix(), full))
    found.sort()
    return found


def copy_files(src: Path, dest: Path) -> list[str]:
    """Copy every regular file under src to the same relative place under dest; their relative paths."""
    copied = []
    for rel, full in list_files(src):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(full, dest / rel)
        copied.append(rel)
    return copied


def move_files(src: Path, dest: Path) -> list[str]:
    """Move every regular file under src to the same relative place under dest; their relative paths."""
    moved = []
    for rel, full in list_files(src):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(full), dest / rel)
        moved.append(rel)
    return moved


def place_for(dest: Path, name: str) -> Path | None:
    """Where a file a backend names (a blob, an artifact) goes under dest; None (logged) for a name that
    would land outside it: such names are the cloud's, not a caller's, and are skipped, not followed."""
    try:
        return dest.joinpath(*safe_entry(name).parts)
    except UnsafePath:
        log.warning("skipped the file %r: its name leaves the folder it is written to", name)
        return None


def fetch_into(dest: Path, files: dict[str, str], fetch: Callable[[str, Path], object]) -> list[str]:
    """fetch(name, path) for each file a backend names, `files` mapping its path under dest to its name
    there; the paths written, sorted (a name that would land outside dest is skipped: place_for)."""
    written = []
    for rel in sorted(files):
        target = place_for(dest, rel)
        if target is None:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fetch(files[rel], target)
        written.append(rel)
    return written


def _open_inside(root: Path, rel: PurePosixPath) -> int:
    """A descriptor of the regular file root/rel, each step opened without following a link (O_NOFOLLOW
    at every folder), so nothing swapped in between listing and reading leads outside root."""
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in rel.parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
            os.close(folder)
            folder = inner
        fd = os.open(rel.parts[-1], os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
    finally:
        os.close(folder)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise UnsafePath(f"{rel} is not a file of the run's own (a link, or a file with another name)")
    return fd


def run_outputs(run_dir: Path, outputs: str = "work/outputs") -> list[tuple[str, Path]]:
    """The run's own files under run_dir/outputs as (relative path, path), sorted: none when outputs/ (or a
    folder above it) is a link; files that are links or hard links (another name elsewhere) are skipped."""
    folder = run_dir / outputs
    step = run_dir
    for part in PurePosixPath(outputs).parts:
        step = step / part
        if step.is_symlink() or not step.is_dir():
            if step.is_symlink():
                log.warning("%s is a link: a run's outputs are only what it wrote in its own folder", step)
            return []
    found = []
    for rel, full in list_files(folder):
        try:
            os.close(_open_inside(run_dir, PurePosixPath(outputs, rel)))
        except (UnsafePath, OSError):
            log.warning("skipped %s of run %s: a link, or a file with another name (hard link)", rel, run_dir.name)
            continue
        found.append((rel, full))
    return found


def copy_run_output(run_dir: Path, rel: str, target: Path, *, outputs: str = "work/outputs") -> None:
    """Copy one file run_outputs listed, opened again without following any link (it may have changed since)."""
    fd = _open_inside(run_dir, PurePosixPath(outputs, rel))
    with os.fdopen(fd, "rb") as source, target.open("wb") as copy:
        shutil.copyfileobj(source, copy, 1 << 20)


def copy_run_outputs(run_dir: Path, dest: Path, *, outputs: str = "work/outputs") -> list[str]:
    """Copy the run's own outputs (run_outputs) to the same relative places under dest; their relative paths."""
    copied = []
    for rel, _ in run_outputs(run_dir, outputs):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            copy_run_output(run_dir, rel, dest / rel, outputs=outputs)
        except (UnsafePath, OSError):
            log.warning("skipped %s of run %s: it changed into a link while being copied", rel, run_dir.name)
            continue
        copied.append(rel)
    return copied
