"""Checks that keep caller-supplied names and paths inside their roots."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from amllib.errors import InvalidInput, UnsafePath

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._ +=@,-]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


def safe_relpath(value: str, *, what: str) -> PurePosixPath:
    """A relative path of plain segments: no absolute path, no '..', no empty or odd segment."""
    if not value or not value.strip():
        raise InvalidInput(f"{what} must not be empty")
    if "\\" in value or "\x00" in value:
        raise UnsafePath(f"{what} {value!r} contains a backslash or NUL")
    path = PurePosixPath(value)
    if path.is_absolute():
        raise UnsafePath(f"{what} {value!r} must be relative")
    parts = [p for p in path.parts if p != "."]
    if not parts:
        raise InvalidInput(f"{what} {value!r} names no folder")
    for part in parts:
        if part == ".." or not _SEGMENT.match(part):
            raise UnsafePath(f"{what} {value!r} has an unsafe segment {part!r}")
    return PurePosixPath(*parts)


def safe_entry(value: str) -> PurePosixPath:
    """A file name inside an upload: relative, no '..', no NUL or backslash; any other characters."""
    if not value or "\x00" in value or "\\" in value:
        raise UnsafePath(f"upload entry {value!r} has an empty name, a NUL or a backslash")
    path = PurePosixPath(value)
    parts = [p for p in path.parts if p not in (".", "")]
    if path.is_absolute() or ".." in parts or not parts:
        raise UnsafePath(f"upload entry {value!r} is absolute or leaves its folder")
    return PurePosixPath(*parts)


def resolve_inside(root: Path, value: str, *, what: str) -> Path:
    """`root / value`, refusing anything (including symlinks on the way) that lands outside root."""
    rel = safe_relpath(value, what=what)
    root = root.resolve()
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        raise UnsafePath(f"{what} {value!r} leads outside its root")
    return target


def check_name(value: str, *, what: str) -> str:
    """A model, experiment or compute name: letters, digits, '.', '_' and '-'."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidInput(
            f"{what} {value!r} must start with a letter or digit and use only letters, digits, '.', '_' or '-'"
        )
    return value


def check_script(training_dir: Path, script: str) -> Path:
    """The script must be a .py file directly inside the training folder."""
    if not script or "/" in script or "\\" in script or script in (".", "..") or "\x00" in script:
        raise UnsafePath(f"script {script!r} must name a file directly inside training/")
    if not script.endswith(".py"):
        raise InvalidInput(f"script {script!r} must be a .py file")
    path = training_dir / script
    if path.is_symlink() or not path.is_file():
        raise InvalidInput(f"script {script!r} not found in {training_dir.name}/")
    return path
