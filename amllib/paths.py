"""Checks that keep caller-supplied paths inside their roots (names and script arguments: names.py)."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from amllib.errors import InvalidInput, UnsafePath, quoted

MAX_PART_BYTES = 255  # a file name on every common file system
MAX_PATH_BYTES = 1024  # well inside PATH_MAX once joined to the server's own roots
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._ +=@,-]*")


def check_length(value: str, parts: list[str], *, what: str) -> None:
    """Refuse a path the file system would refuse (ENAMETOOLONG) before it reaches the disk."""
    if len(value.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidInput(f"{what} {quoted(value)} is longer than {MAX_PATH_BYTES} bytes")
    for part in parts:
        if len(part.encode("utf-8", "surrogatepass")) > MAX_PART_BYTES:
            raise InvalidInput(f"{what} {quoted(value)} has a name longer than {MAX_PART_BYTES} bytes")


def safe_relpath(value: str, *, what: str) -> PurePosixPath:
    """A relative path of plain segments: no absolute path, no '..', no empty or odd segment."""
    if not value or not value.strip():
        raise InvalidInput(f"{what} must not be empty")
    if "\\" in value or "\x00" in value:
        raise UnsafePath(f"{what} {quoted(value)} contains a backslash or NUL")
    path = PurePosixPath(value)
    if path.is_absolute():
        raise UnsafePath(f"{what} {quoted(value)} must be relative")
    parts = [p for p in path.parts if p != "."]
    if not parts:
        raise InvalidInput(f"{what} {quoted(value)} names no folder")
    check_length(value, parts, what=what)
    for part in parts:
        if part == ".." or not _SEGMENT.fullmatch(part):
            raise UnsafePath(f"{what} {quoted(value)} has an unsafe segment {quoted(part)}")
    return PurePosixPath(*parts)


def safe_entry(value: str) -> PurePosixPath:
    """A file name inside an upload: relative, no '..', no NUL or backslash; any other characters."""
    if not value or "\x00" in value or "\\" in value:
        raise UnsafePath(f"upload entry {quoted(value)} has an empty name, a NUL or a backslash")
    path = PurePosixPath(value)
    parts = [p for p in path.parts if p not in (".", "")]
    if path.is_absolute() or ".." in parts or not parts:
        raise UnsafePath(f"upload entry {quoted(value)} is absolute or leaves its folder")
    check_length(value, parts, what="upload entry")
    return PurePosixPath(*parts)


def resolve_inside(root: Path, value: str, *, what: str) -> Path:
    """`root / value`, refusing anything (including symlinks on the way) that lands outside root."""
    rel = safe_relpath(value, what=what)
    root = root.resolve()
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        raise UnsafePath(f"{what} {quoted(value)} leads outside its root")
    return target


def check_folder_target(root: Path, target: Path, *, value: str, what: str) -> Path:
    """A folder-to-be under root: neither it nor any folder on the way may be an existing file."""
    for place in [target, *target.parents]:
        if place == root or root not in place.parents:
            break
        if place.exists() and not place.is_dir():
            where = "is" if place == target else "lies inside"
            raise InvalidInput(f"{what} {quoted(value)} {where} a file, not a folder")
    return target


def check_script(training_dir: Path, script: str) -> Path:
    """The script must be a .py file directly inside the training folder."""
    if not script or "/" in script or "\\" in script or script in (".", "..") or "\x00" in script:
        raise UnsafePath(f"script {quoted(script)} must name a file directly inside training/")
    check_length(script, [script], what="script")
    if not script.endswith(".py"):
        raise InvalidInput(f"script {quoted(script)} must be a .py file")
    path = training_dir / script
    if path.is_symlink() or not path.is_file():
        raise InvalidInput(f"script {quoted(script)} not found in {training_dir.name}/")
    return path
