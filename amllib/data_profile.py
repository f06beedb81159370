"""A first look at an uploaded data version: its first table's first rows and a profile of each column.

Computed once per version, from the folder the upload came from (the service's staged copy), and kept
by the version's digest, so every page view reads the stored answer. CSV and TSV are read (the first
such file in the folder, by name); at most PROFILE_ROWS rows and READ_BYTES bytes of it, so a 40 GB
file costs no more than a small one (`complete` says whether the whole file was read). Parquet needs
an engine this project does not install: such a version has no profile and says why.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from amllib.files import list_files

PREVIEW_ROWS = 20
PROFILE_ROWS = 100_000
READ_BYTES = 32 * 1024 * 1024
DISTINCT_CAP = 10_000
CELL_CHARS = 200
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})
TABLES = {".csv": ",", ".tsv": "\t"}


def first_table(folder: Path) -> tuple[str, Path] | None:
    """(its path inside the folder, the file) of the first CSV or TSV file, by name."""
    for rel, full in sorted(list_files(folder)):
        if Path(rel).suffix.lower() in TABLES and not Path(rel).name.startswith("."):
            return rel, full
    return None


def _lines(handle: Any, budget: int) -> Iterator[str]:
    used = 0
    for line in handle:
        used += len(line)
        if used > budget:
            return
        yield line


class _Column:
    def __init__(self, name: str) -> None:
        self.name = name
        self.missing = 0
        self.values: set[str] = set()
        self.capped = False
        self.ints = self.floats = True
        self.low = math.inf
        self.high = -math.inf

    def add(self, cell: str) -> None:
        text = cell.strip()
        if text.lower() in MISSING:
            self.missing += 1
            return
        if len(self.values) < DISTINCT_CAP:
            self.values.add(text)
        else:
            self.capped = self.capped or text not in self.values
        if self.floats:
            try:
                number = float(text)
            except ValueError:
                self.ints = self.floats = False
                return
            if not math.isfinite(number):
                return
            self.ints = self.ints and number.is_integer() and "." not in text and "e" not in text.lower()
            self.low, self.high = min(self.low, number), max(self.high, number)

    def body(self, rows: int) -> dict[str, Any]:
        present = rows - self.missing
        kind = "empty" if not present else "integer" if self.ints else "number" if self.floats else "text"
        numeric = kind in ("integer", "number") and self.low <= self.high
        return {
            "name": self.name,
            "type": kind,
            "missing": self.missing,
            "distinct": len(self.values),
            "distinct_capped": self.capped,  # more distinct values than were counted
            "min": (int(self.low) if kind == "integer" else self.low) if numeric else None,
            "max": (int(self.high) if kind == "integer" else self.high) if numeric else None,
        }


def _cell(text: str) -> str:
    return text.replace("\x00", "\ufffd")[:CELL_CHARS]


def profile_table(rel: str, path: Path) -> dict[str, Any]:
    """The first rows and each column's type, missing and distinct counts, min and max."""
    delimiter = TABLES[Path(rel).suffix.lower()]
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(_lines(handle, READ_BYTES), delimiter=delimiter)
        header = [_cell(h) or f"column {i + 1}" for i, h in enumerate(next(reader, []))]
        columns = [_Column(name) for name in header]
        preview: list[list[str]] = []
        rows = 0
        complete = True
        try:
            for row in reader:
                if rows >= PROFILE_ROWS:
                    complete = False
                    break
                rows += 1
                if len(preview) < PREVIEW_ROWS:
                    preview.append([_cell(c) for c in row[: len(header) or None]])
                for column, cell in zip(columns, row, strict=False):
                    column.add(cell)
                for column in columns[len(row) :]:  # a short row: its missing cells
                    column.missing += 1
        except csv.Error:
            complete = False
        if complete and handle.read(1):  # stopped at the byte budget
            complete = False
    return {
        "file": rel,
        "rows_read": rows,
        "complete": complete,
        "columns": [column.body(rows) for column in columns],
        "preview": {"header": header, "rows": preview},
    }


def profile_folder(folder: Path) -> dict[str, Any]:
    """The folder's first table profiled, or {"file": None, "why": ...} when it has none this can read."""
    found = first_table(folder)
    if found is None:
        parquet = any(Path(rel).suffix.lower() == ".parquet" for rel, _ in list_files(folder))
        why = "Parquet is not read (no Parquet engine is installed)" if parquet else "no CSV or TSV file in it"
        return {"file": None, "why": why}
    try:
        return profile_table(*found)
    except OSError as exc:
        return {"file": found[0], "why": f"could not be read ({exc.strerror or exc})"}


def save(profile: dict[str, Any], cache: Path, digest: str) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    name = digest.removeprefix("sha256:")
    partial = cache / f".{name}.partial"
    partial.write_text(json.dumps(profile, allow_nan=False))
    partial.replace(cache / f"{name}.json")


def _stored(cache: Path, digest: str) -> Path | None:
    """Where the version's profile is kept (a digest that is not plain hex-like text has none)."""
    name = digest.removeprefix("sha256:")
    return cache / f"{name}.json" if name.isalnum() and len(name) <= 128 else None


def exists(cache: Path, digest: str) -> bool:
    path = _stored(cache, digest)
    return path is not None and path.is_file()


def load(cache: Path, digest: str) -> dict[str, Any] | None:
    path = _stored(cache, digest)
    return json.loads(path.read_text()) if path is not None and path.is_file() else None
