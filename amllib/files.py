"""Listing and moving the regular files of a folder tree (links skipped), the same way everywhere."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

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
