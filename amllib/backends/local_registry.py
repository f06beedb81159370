"""The local model registry: versions in SQLite, files under AZML_HOME/models/<name>/<version>/."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from amllib import jsonsafe
from amllib.backends.base import AliasBook, ModelVersion
from amllib.errors import InvalidInput, ModelNotFound, quoted
from amllib.files import copy_run_output, run_outputs
from amllib.jsonsafe import json_safe
from amllib.names import check_name

_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    tags TEXT NOT NULL,
    run_id TEXT,
    data_version TEXT,
    script_digest TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (name, version)
)
"""


_ALIAS_BOOKS = """
CREATE TABLE IF NOT EXISTS alias_books (
    name TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    rev INTEGER NOT NULL
)
"""


class LocalRegistry:
    """Numbered versions of named models; numbering is serialised by SQLite's write lock.

    Each model's alias book (amllib/promotion.py) is one row, replaced in one statement only while its
    revision is the one read: a compare-and-set every process on this machine shares.
    """

    def __init__(self, home: Path) -> None:
        self.files_root = home / "models"
        self.files_root.mkdir(parents=True, exist_ok=True)
        self.db_path = home / "registry.sqlite"
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            db.execute(_ALIAS_BOOKS)
            columns = {row[1] for row in db.execute("PRAGMA table_info(model_versions)")}
            if "description" not in columns:  # a registry made before versions had one
                db.execute("ALTER TABLE model_versions ADD COLUMN description TEXT")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection closed on leaving (sqlite3's own context manager only commits, it never closes)."""
        db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    def register(
        self,
        run_dir: Path,
        *,
        name: str,
        tags: dict[str, Any],
        run_id: str | None,
        data_version: str | None,
        script_digest: str | None,
    ) -> ModelVersion:
        """Copy outputs/ aside, then take the next version number and move the copy in, atomically.

        A run is registered once per name: registering it again (say, after a crash between
        registering and recording that) returns the version it already made.
        """
        check_name(name, what="model name")
        with self._connect() as db:
            made = self._made_from(db, name, run_id)
        if made is not None:
            return made
        files = run_outputs(run_dir)  # the run's own files: no link, nothing outside its folder
        if not files:
            raise InvalidInput(f"run {run_id} produced no files in outputs/; nothing to register")
        model_dir = self.files_root / name
        model_dir.mkdir(parents=True, exist_ok=True)
        staging = model_dir / f".{uuid.uuid4().hex}.partial"
        try:
            for rel, _ in files:
                (staging / "outputs" / rel).parent.mkdir(parents=True, exist_ok=True)
                copy_run_output(run_dir, rel, staging / "outputs" / rel)
            created = time.time()
            with self._connect() as db:
                try:
                    db.execute("BEGIN IMMEDIATE")
                    made = self._made_from(db, name, run_id)
                    if made is not None:
                        db.execute("ROLLBACK")
                        return made
                    (last,) = db.execute(
                        "SELECT COALESCE(MAX(version), 0) FROM model_versions WHERE name = ?", (name,)
                    ).fetchone()
                    version = last + 1
                    final = model_dir / str(version)
                    shutil.rmtree(final, ignore_errors=True)  # left by a crash before its row was committed
                    staging.rename(final)
                    db.execute(
                        f"INSERT INTO model_versions ({self._FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                        (name, version, jsonsafe.dumps(tags), run_id, data_version, script_digest, created),
                    )
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return ModelVersion(
            name=name,
            version=version,
            tags=tags,
            run_id=run_id,
            created_at=created,
            data_version=data_version,
            script_digest=script_digest,
        )

    _FIELDS = "name, version, tags, run_id, data_version, script_digest, created_at, description"

    @staticmethod
    def _from_row(row: tuple) -> ModelVersion:
        return ModelVersion(
            name=row[0],
            version=row[1],
            tags=json_safe(json.loads(row[2])),  # a registry written before NaN became "NaN"
            run_id=row[3],
            data_version=row[4],
            script_digest=row[5],
            created_at=row[6],
            description=row[7],
        )

    def update(self, name: str, version: int, *, description: str | None, tags: dict[str, Any] | None) -> ModelVersion:
        with self._connect() as db:
            if description is not None:
                db.execute(
                    "UPDATE model_versions SET description = ? WHERE name = ? AND version = ?",
                    (description, name, version),
                )
            if tags is not None:
                db.execute(
                    "UPDATE model_versions SET tags = ? WHERE name = ? AND version = ?",
                    (jsonsafe.dumps(tags), name, version),
                )
            row = db.execute(
                f"SELECT {self._FIELDS} FROM model_versions WHERE name = ? AND version = ?", (name, version)
            ).fetchone()
        if row is None:
            raise ModelNotFound(f"model {quoted(name)} version {version} not found")
        return self._from_row(row)

    def read_aliases(self, name: str) -> AliasBook:
        with self._connect() as db:
            row = db.execute("SELECT doc, rev FROM alias_books WHERE name = ?", (name,)).fetchone()
        if row is None:
            return AliasBook()
        doc = json.loads(row[0])
        return AliasBook(
            aliases=doc.get("aliases", {}),
            history=doc.get("history", []),
            archived=doc.get("archived", []),
            token=str(row[1]),
        )

    def write_aliases(self, name: str, book: AliasBook, *, expected: str | None) -> bool:
        doc = jsonsafe.dumps(book.document())
        with self._connect() as db:
            if expected is None:
                done = db.execute("INSERT INTO alias_books VALUES (?, ?, 1) ON CONFLICT (name) DO NOTHING", (name, doc))
            else:
                done = db.execute(
                    "UPDATE alias_books SET doc = ?, rev = rev + 1 WHERE name = ? AND rev = ?",
                    (doc, name, int(expected)),
                )
            return done.rowcount == 1

    def _made_from(self, db: sqlite3.Connection, name: str, run_id: str | None) -> ModelVersion | None:
        """The first version of `name` registered from run_id, if any."""
        if run_id is None:
            return None
        row = db.execute(
            f"SELECT {self._FIELDS} FROM model_versions WHERE name = ? AND run_id = ? ORDER BY version LIMIT 1",
            (name, run_id),
        ).fetchone()
        return None if row is None else self._from_row(row)

    def list_models(self) -> list[str]:
        with self._connect() as db:
            return [r[0] for r in db.execute("SELECT DISTINCT name FROM model_versions ORDER BY name")]

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {self._FIELDS} FROM model_versions WHERE name = ? ORDER BY version", (name,)
            ).fetchall()
        return [self._from_row(r) for r in rows]

    def outputs_dir(self, name: str, version: int) -> Path:
        if not any(v.version == version for v in self.list_versions(name)):
            raise ModelNotFound(f"model {quoted(name)} version {version} not found")
        return self.files_root / name / str(version) / "outputs"
