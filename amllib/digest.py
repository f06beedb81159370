"""The content digest that names a data version, the same on every backend."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from amllib.files import list_files

_CHUNK = 1 << 20


@dataclass(frozen=True)
class TreeSummary:
    """What a folder holds: its digest, file count and byte count."""

    digest: str
    files: int
    bytes: int


def file_sha256(path: Path) -> str:
    """Hex sha256 of one file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class TreeHasher:
    """Collects (path, size, content hash) per file in any order; summary() gives tree_digest's answer.

    Lets an upload hash files while writing them instead of reading them back.
    """

    def __init__(self) -> None:
        self._files: dict[str, tuple[int, str]] = {}

    def add(self, rel: str, size: int, sha256_hex: str) -> None:
        self._files[rel] = (size, sha256_hex)

    def summary(self) -> TreeSummary:
        digest = hashlib.sha256()
        for rel in sorted(self._files):
            size, sha = self._files[rel]
            digest.update(f"{rel}\0{size}\0{sha}\n".encode())
        return TreeSummary(
            digest=f"sha256:{digest.hexdigest()}",
            files=len(self._files),
            bytes=sum(size for size, _ in self._files.values()),
        )


def tree_digest(folder: Path) -> TreeSummary:
    """sha256 over the sorted file list, each entry its relative path, size and content hash."""
    hasher = TreeHasher()
    for rel, full in list_files(folder):
        hasher.add(rel, full.stat().st_size, file_sha256(full))
    return hasher.summary()
