"""The job store's interface: jobs, their events, leases, and the SQL both databases run.

Two implementations share everything here: SQLite (service/core/store_sqlite.py, the embedded
default, one process) and PostgreSQL (service/core/store_postgres.py, several replicas).
No business rules live here (service/core/jobs.py owns status). Writers get a Tx, one
transaction of named operations; its SQL is written once, in what both databases speak
(`?` placeholders, ON CONFLICT, RETURNING), with the few differences in `Dialect`.

Leases: a job is carried out by one replica at a time, its `owner`, until `lease_until`;
the owner renews its leases, and any replica takes over a job whose lease ran out
(service/core/worker.py). The schema is versioned by Alembic (service/core/migrations/).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from amllib import jsonsafe

T = TypeVar("T")

EVENTS_KEPT = 100_000  # the feed keeps this many; a client further behind is told to reload
COLUMNS = (
    "seq, id, kind, status, idempotency_key, request_hash, spec, result, error, error_kind, backend_run_id, "
    "callback_url, callback_status, cancel_requested, created_at, started_at, finished_at, owner, lease_until"
)
_NAMES = COLUMNS.split(", ")
SEARCH_SET = 2000  # a search matching at most this many jobs is read by their seqs, found through its indexes
SENDING = "sending"  # a callback or notice being posted: found so after its sender died, it is recorded as lost


class LeaseLost(Exception):
    """This replica no longer owns the job (its lease ran out and another replica took it over)."""


@dataclass
class Job:
    """One row of the jobs table, with spec and result decoded."""

    id: str
    kind: str
    status: str
    spec: dict[str, Any]
    created_at: float
    seq: int = 0
    idempotency_key: str | None = None
    request_hash: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None
    backend_run_id: str | None = None
    callback_url: str | None = None
    callback_status: str | None = None
    cancel_requested: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    owner: str | None = None
    lease_until: float | None = None

    @classmethod
    def from_row(cls, row: Iterable[Any]) -> Job:
        values = dict(zip(_NAMES, row, strict=True))
        values["spec"] = json.loads(values["spec"])
        values["result"] = json.loads(values["result"])
        values["cancel_requested"] = bool(values["cancel_requested"])
        return cls(**values)


SPEC_COLUMNS = ("experiment", "script", "started_by", "created_by", "name")
INSERT_JOB = (
    "INSERT INTO jobs (id, kind, status, idempotency_key, request_hash, spec, result, error, backend_run_id, "
    "callback_url, created_at, started_at, finished_at, owner, lease_until, experiment, script, started_by, "
    "created_by, name, archived, data_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "?, ?, ?)"
)


INSERT_PARAM = "INSERT INTO run_params (job_seq, name, value, number) VALUES (?, ?, ?, ?)"
_HAS_PARAM = "EXISTS (SELECT 1 FROM run_params q WHERE q.job_seq = jobs.seq AND q.name = ? AND q.value = ?)"
JOINED = ", ".join(f"jobs.{name}" for name in COLUMNS.split(", "))  # the jobs' columns beside another table's


def _job_row(job: Job) -> tuple[Any, ...]:
    return (
        job.id,
        job.kind,
        job.status,
        job.idempotency_key,
        job.request_hash,
        jsonsafe.dumps(job.spec),
        jsonsafe.dumps(job.result),
        job.error,
        job.backend_run_id,
        job.callback_url,
        job.created_at or time.time(),
        job.started_at,
        job.finished_at,
        job.owner,
        job.lease_until,
        *spec_columns(job.spec).values(),
        result_column(job.result),
    )


def spec_columns(spec: dict[str, Any]) -> dict[str, str | int | None]:
    """The spec's fields that have columns of their own (what a search matches exactly, as text; whether the
    run is archived, 0 or 1)."""
    return {**{key: _text(spec.get(key)) for key in SPEC_COLUMNS}, "archived": int(bool(spec.get("archived")))}


def result_column(result: dict[str, Any]) -> str | None:
    return _text(result.get("data_version"))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return jsonsafe.clean_text(value if isinstance(value, str) else json.dumps(value))


_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?")


def param_rows(spec: dict[str, Any]) -> list[tuple[str, str, float | None]]:
    """(name, value as text, its number or None) of a run's parameters: estimators and each `args` key.
    A number only for plain decimal text (7, 0.5, 1e-3): what a sort by the parameter orders by."""
    given: dict[str, Any] = {} if spec.get("estimators") is None else {"estimators": spec["estimators"]}
    args = spec.get("args")
    if isinstance(args, dict):
        given.update({k: v for k, v in args.items() if k != "estimators" or "estimators" not in given})
    rows = []
    for name, raw in given.items():
        value = raw if isinstance(raw, str) else json.dumps(raw)
        number = float(value) if _DECIMAL.fullmatch(value.strip()) else None
        if number is not None and not math.isfinite(number):
            number = None
        rows.append((jsonsafe.clean_text(str(name))[:255], jsonsafe.clean_text(value)[:1024], number))
    return rows


def param_number(spec: dict[str, Any], name: str) -> float | None:
    return next((number for key, _, number in param_rows(spec) if key == name), None)


def metric_numbers(result: dict[str, Any]) -> dict[str, float]:
    """Each metric's last value that is a finite number (text, booleans, NaN and infinities are no value)."""
    metrics = result.get("metrics")
    if not isinstance(metrics, dict):
        return {}
    found = {}
    for name, value in metrics.items():
        number = Order.number(value)
        if number is not None and isinstance(name, str):
            found[jsonsafe.clean_text(name)] = number
    return found


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    def execute(self, sql: Any, params: Any = ..., /) -> Any: ...


@dataclass(frozen=True)
class Dialect:
    """What differs between the two databases' SQL here: placeholders, JSON fields, row locks."""

    postgres: bool

    def sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.postgres else text

    def field(self, column: str, key: str) -> str:
        """A top-level field of a JSON text column, as text (or a number on SQLite)."""
        return f"({column}::jsonb ->> '{key}')" if self.postgres else f"json_extract({column}, '$.{key}')"

    def flag(self, column: str, key: str) -> str:
        """A JSON field that is true."""
        return f"{self.field(column, key)} = 'true'" if self.postgres else f"{self.field(column, key)} = 1"

    def prefix(self, column: str, value: str) -> tuple[str, list[Any]]:
        """`column` starts with `value`, in a form the column's index serves: on SQLite a range (its BINARY
        collation orders by code point); on PostgreSQL LIKE 'value%' with the wildcards escaped, which its
        text_pattern_ops index serves byte by byte whatever the database's collation (in en_US a range would
        also take "svc17x" for "svc_17": punctuation weighs nothing there)."""
        if self.postgres:
            escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return f"{column} LIKE ? ESCAPE '\\'", [escaped + "%"]
        return f"({column} >= ? AND {column} < ?)", [value, value + "\U0010ffff"]

    def contains(self, column: str) -> str:
        """The text column holds the parameter somewhere."""
        return f"strpos({column}, ?) > 0" if self.postgres else f"instr({column}, ?) > 0"

    def lock(self, *, skip_locked: bool = False) -> str:
        """Row locks for a SELECT (SQLite's one writer needs none)."""
        if not self.postgres:
            return ""
        return " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"

    def marks(self, values: Iterable[Any]) -> str:
        return ",".join("?" for _ in values)

    def owes_delivery(self) -> str:
        """An ended job whose callback or chat notice is not yet posted (or whose sender died posting it)."""
        notice = self.field("result", "notice")
        return (
            f"((callback_url IS NOT NULL AND (callback_status IS NULL OR callback_status = '{SENDING}'))"
            f" OR ({self.field('spec', 'notify')} IS NOT NULL AND ({notice} IS NULL OR {notice} = '{SENDING}')))"
        )


@dataclass(frozen=True)
class Order:
    """How a page of jobs is sorted: by a key, missing values last either way, ties by seq.

    Keys: `created` (the order jobs were accepted: seq), `started` (when it started, else when it was
    accepted), `duration` (finished minus started; none until it ends), `metric` (the last value of
    `metric` the run recorded, if a number) and `param` (the run's parameter named `metric`, if a plain
    number). `value(job)` is the key as the SQL computes it, which is what a cursor holds: the next page
    starts after (value, seq).
    """

    key: str = "created"
    metric: str | None = None
    ascending: bool = False

    def column(self) -> str:
        """The key as the SQL expression its index is built on (migration 0008); metrics: run_metrics.value."""
        return {
            "created": "seq",
            "started": "COALESCE(started_at, created_at)",
            "duration": "(finished_at - started_at)",
            "param": "m.number",
        }.get(self.key, "m.value")

    @property
    def table(self) -> str | None:
        """Where a metric's or a parameter's values are, a row per run and name."""
        return {"metric": "run_metrics", "param": "run_params"}.get(self.key)

    def value(self, job: Job) -> float | None:
        if self.key == "created":
            return job.seq
        if self.key == "started":
            return job.started_at if job.started_at is not None else job.created_at
        if self.key == "duration":
            return None if job.finished_at is None or job.started_at is None else job.finished_at - job.started_at
        if self.key == "param":
            return param_number(job.spec, self.metric or "")
        return self.number((job.result.get("metrics") or {}).get(self.metric))

    @staticmethod
    def number(value: Any) -> float | None:
        """A metric's value as the stores sort it: a finite double, else no value."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        try:
            number = float(value)
        except OverflowError:
            return None
        return number if math.isfinite(number) else None


NEWEST = Order()


class Tx:
    """One transaction of the job store: every change a writer may make, each a named step."""

    def __init__(self, db: Connection, dialect: Dialect, *, on_event: Callable[[int], None] | None = None) -> None:
        self.db = db
        self.dialect = dialect
        self._on_event = on_event

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Cursor:
        return self.db.execute(self.dialect.sql(sql), tuple(params))

    def now(self) -> float:
        """The time by the database's clock, in epoch seconds: every replica measures leases and lockouts by
        this one clock, so a replica whose own clock runs ahead can't take live replicas' jobs. (SQLite's
        clock is this process's: it has one.)"""
        if not self.dialect.postgres:
            return time.time()
        return float(self.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8").fetchone()[0])

    def job(self, job_id: str, *, lock: bool = False) -> Job | None:
        """The row as it is in this transaction (lock: held until it ends, against writers on other replicas)."""
        row = self.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?{self.dialect.lock() if lock else ''}", (job_id,))
        found = row.fetchone()
        return Job.from_row(found) if found else None

    def insert_job(self, job: Job, *, lease: float | None = None) -> tuple[Job, bool]:
        """Insert job (leased to its owner for `lease` seconds, when given); if its idempotency key (or id) is
        taken, (the job holding it, False) instead.

        One INSERT … ON CONFLICT DO NOTHING: two replicas sending the same key at once make one job.
        """
        if lease is not None:
            job.lease_until = self.now() + lease
        row = self.execute(f"{INSERT_JOB} ON CONFLICT DO NOTHING RETURNING seq", _job_row(job)).fetchone()
        if row is not None:
            job.seq = row[0]
            if job.kind == "run":
                self._write_metrics(job.seq, job.result)
                self._write_params(job.seq, job.spec)
            return job, True
        mine = self.job(job.id)
        if mine is not None and mine.request_hash == job.request_hash and mine.kind == job.kind:
            return mine, True  # this very insert, run again after its commit's answer was lost with the connection
        if job.idempotency_key:
            found = self.execute(f"SELECT {COLUMNS} FROM jobs WHERE idempotency_key = ?", (job.idempotency_key,))
            existing = found.fetchone()
            if existing:
                return Job.from_row(existing), False
        raise ValueError(f"a job with id {job.id} exists already")

    def insert_jobs(self, jobs: list[Job]) -> int:
        """Many new jobs in one go (bulk loads: a bench's million runs), ids not yet taken; how many were added.
        One statement for the jobs and one for their metrics, each sent once with every row."""
        before = self.execute("SELECT COALESCE(MAX(seq), 0) FROM jobs").fetchone()[0]
        self._execute_many(f"{INSERT_JOB} ON CONFLICT DO NOTHING", [_job_row(job) for job in jobs])
        mine = {job.id: job for job in jobs}
        added = {row[0]: row[1] for row in self.execute("SELECT id, seq FROM jobs WHERE seq > ?", (before,)).fetchall()}
        metrics = [
            (seq, name, value)
            for job_id, seq in added.items()
            if job_id in mine and mine[job_id].kind == "run"
            for name, value in metric_numbers(mine[job_id].result).items()
        ]
        self._execute_many("INSERT INTO run_metrics (job_seq, name, value) VALUES (?, ?, ?)", metrics)
        params = [
            (seq, *row)
            for job_id, seq in added.items()
            if job_id in mine and mine[job_id].kind == "run"
            for row in param_rows(mine[job_id].spec)
        ]
        self._execute_many(INSERT_PARAM, params)
        return sum(1 for job_id in added if job_id in mine)

    def _execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        many: Any = getattr(self.db, "executemany", None)  # sqlite3's connection has it; psycopg's cursors do
        if many is None:
            many = self.db.cursor().executemany  # type: ignore[attr-defined]
        many(self.dialect.sql(sql), rows)

    def update_job(self, job_id: str, fields: dict[str, Any]) -> Job:
        """Set columns of one row (spec/result given as dicts) and return the row."""
        encoded = {
            k: jsonsafe.dumps(v) if k in ("spec", "result") else int(v) if isinstance(v, bool) else v
            for k, v in fields.items()
        }
        if "spec" in fields:
            encoded.update(spec_columns(fields["spec"]))
        if "result" in fields:
            encoded["data_version"] = result_column(fields["result"])
        if encoded:
            assignments = ", ".join(f"{name} = ?" for name in encoded)
            self.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*encoded.values(), job_id))
        job = self.job(job_id)
        if job is None:
            raise LookupError(f"job {job_id} is not in the job store")
        if "result" in fields and job.kind == "run":
            self.execute("DELETE FROM run_metrics WHERE job_seq = ?", (job.seq,))
            self._write_metrics(job.seq, job.result)
        if "spec" in fields and job.kind == "run":
            self.execute("DELETE FROM run_params WHERE job_seq = ?", (job.seq,))
            self._write_params(job.seq, job.spec)
        return job

    def _write_metrics(self, seq: int, result: dict[str, Any]) -> None:
        """The run's last numeric value of each metric, a row each: what a sort by a metric walks (its index)."""
        rows = [(seq, name, value) for name, value in metric_numbers(result).items()]
        for row in rows:
            self.execute("INSERT INTO run_metrics (job_seq, name, value) VALUES (?, ?, ?)", row)

    def _write_params(self, seq: int, spec: dict[str, Any]) -> None:
        """The run's parameters, a row each: what a filter or sort by a parameter finds through its indexes."""
        for row in param_rows(spec):
            self.execute(INSERT_PARAM, (seq, *row))

    def append_event(self, *, topic: str, job_id: str | None, data: dict[str, Any]) -> int:
        """Add an event in the caller's transaction (so a change and its event commit together).

        On PostgreSQL the event's id is taken under a transaction-wide lock held to the commit, so
        events commit in the order of their ids: a reader that saw id n can never later find an
        id below n appear (the feed reads "everything after n"). Then NOTIFY tells every replica.
        """
        if self.dialect.postgres:
            self.execute("SELECT pg_advisory_xact_lock(?)", (EVENT_LOCK,))
        (seq,) = self.execute(
            "INSERT INTO events (topic, job_id, created_at, data) VALUES (?, ?, ?, ?) RETURNING seq",
            (topic, job_id, time.time(), jsonsafe.dumps(data)),
        ).fetchone()
        if self.dialect.postgres:
            self.execute("SELECT pg_notify(?, ?)", (EVENT_CHANNEL, str(seq)))
        if seq % 1000 == 0:
            self.execute("DELETE FROM events WHERE seq <= ?", (seq - EVENTS_KEPT,))
        return seq

    # -- leases ------------------------------------------------------------------
    def claim(self, owner: str, *, terminal: frozenset[str], lease: float, everything: bool, limit: int) -> list[Job]:
        """Take jobs no live replica carries: unfinished, or ended owing a callback or notice.

        Taken: jobs with no owner or an expired lease (everything=True: any other owner's, for the
        one process of an embedded store starting again). Rows another replica is claiming at the
        same moment are skipped, not waited for (FOR UPDATE SKIP LOCKED).
        """
        now = self.now()
        marks = self.dialect.marks(terminal)
        free = "owner IS NULL OR owner <> ?" if everything else "owner IS NULL OR (owner <> ? AND lease_until < ?)"
        free_params: tuple[Any, ...] = (owner,) if everything else (owner, now)
        sql = (
            f"UPDATE jobs SET owner = ?, lease_until = ? WHERE seq IN (SELECT seq FROM jobs "
            f"WHERE pending = 1 AND (status NOT IN ({marks}) OR {self.dialect.owes_delivery()}) AND ({free}) "
            f"ORDER BY seq LIMIT ?{self.dialect.lock(skip_locked=True)}) RETURNING {COLUMNS}"
        )
        rows = self.execute(sql, (owner, now + lease, *terminal, *free_params, limit)).fetchall()
        return sorted(map(Job.from_row, rows), key=lambda job: job.seq)

    def renew(self, owner: str, *, terminal: frozenset[str], lease: float) -> set[str]:
        """Extend this owner's leases on the jobs it still has to act on; the ids it still owns."""
        marks = self.dialect.marks(terminal)
        sql = (
            f"UPDATE jobs SET lease_until = ? WHERE pending = 1 AND owner = ? AND (status NOT IN ({marks}) "
            f"OR {self.dialect.owes_delivery()}) RETURNING id"
        )
        return {row[0] for row in self.execute(sql, (self.now() + lease, owner, *terminal)).fetchall()}

    def lead(self, name: str, owner: str, *, lease: float) -> bool:
        """Be (or stay) the one replica doing `name` (the importer, the sweep) until lease seconds from now."""
        now = self.now()
        row = self.execute(
            "INSERT INTO leaders (name, owner, lease_until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
            "SET owner = excluded.owner, lease_until = excluded.lease_until "
            "WHERE leaders.owner = excluded.owner OR leaders.lease_until < ? RETURNING owner",
            (name, owner, now + lease, now),
        ).fetchone()
        return row is not None

    # -- the retention sweep ---------------------------------------------------------
    def remove_jobs(self, jobs: list[Job], *, terminal: frozenset[str], now: float) -> list[Job]:
        """Delete these jobs (if still ended) with their events; their runs are recorded as swept."""
        removed = []
        marks = self.dialect.marks(terminal)
        for job in jobs:
            gone = self.execute(f"DELETE FROM jobs WHERE id = ? AND status IN ({marks})", (job.id, *terminal))
            if not gone.rowcount:
                continue
            self.execute("DELETE FROM events WHERE job_id = ?", (job.id,))
            self.execute("DELETE FROM run_metrics WHERE job_seq = ?", (job.seq,))
            self.execute("DELETE FROM run_params WHERE job_seq = ?", (job.seq,))
            if job.backend_run_id:
                self.record_swept(job.backend_run_id, now=now)
            removed.append(job)
        return removed

    def record_swept(self, run_id: str, *, now: float) -> None:
        self.execute("INSERT INTO swept_runs VALUES (?, ?, 0) ON CONFLICT DO NOTHING", (run_id, now))

    def mark_discarded(self, run_id: str) -> None:
        self.execute("UPDATE swept_runs SET discarded = 1 WHERE run_id = ?", (run_id,))

    def forget_swept(self, *, before: float) -> None:
        """Drop old events and the records of runs swept long ago (the importer never looks back that far)."""
        self.execute("DELETE FROM events WHERE created_at < ?", (before,))
        self.execute("DELETE FROM swept_runs WHERE discarded = 1 AND swept_at < ?", (before,))

    def revoke_session(self, session_id: str, *, expires: float) -> None:
        self.execute(
            "INSERT INTO revoked_sessions VALUES (?, ?) "
            "ON CONFLICT (session_id) DO UPDATE SET expires = excluded.expires",
            (session_id, expires),
        )
        self.execute("DELETE FROM revoked_sessions WHERE expires < ?", (time.time(),))  # nothing to refuse any more

    # -- approvals of protected alias moves ------------------------------------------------
    def insert_approval(self, approval: dict[str, Any]) -> bool:
        """A new approval; False when one of its id exists (a move asked again under the same key)."""
        values = {**approval, "gate": jsonsafe.dumps(approval["gate"]) if approval.get("gate") else None}
        done = self.execute(
            f"INSERT INTO approvals ({APPROVAL_COLUMNS}) VALUES ({self.dialect.marks(_APPROVAL_NAMES)}) "
            "ON CONFLICT (id) DO NOTHING",
            [values.get(name) for name in _APPROVAL_NAMES],
        )
        return bool(done.rowcount)

    def decide_approval(self, approval_id: str, *, status: str, by: str, note: str | None) -> dict[str, Any] | None:
        """Move a pending approval to `status`, once: None when it was not pending any more (decided, expired)."""
        now = self.now()
        done = self.execute(
            "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, note = ? "
            "WHERE id = ? AND status = 'pending' AND expires_at > ?",
            (status, by, now, note, approval_id, now),
        )
        if not done.rowcount:
            return None
        row = self.execute(f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        return approval_of(row)

    def finish_approval(self, approval_id: str, *, status: str) -> dict[str, Any] | None:
        """An `approving` approval's move made: recorded `status`, once (None: it was not approving any more)."""
        done = self.execute(
            "UPDATE approvals SET status = ? WHERE id = ? AND status = 'approving'", (status, approval_id)
        )
        if not done.rowcount:
            return None
        row = self.execute(f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        return approval_of(row)

    def note_approval(self, approval_id: str, *, status: str, note: str) -> dict[str, Any]:
        """An approved move that could not be made after all (the gate refused then): why, on the approval."""
        self.execute("UPDATE approvals SET status = ?, note = ? WHERE id = ?", (status, note[:2000], approval_id))
        row = self.execute(f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        return approval_of(row)

    # -- notifications of registry events ------------------------------------------------
    def cursor(self, name: str) -> int | None:
        """Where the reader called `name` stopped in the events (None: it never read)."""
        row = self.execute("SELECT seq FROM cursors WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def start_cursor(self, name: str) -> None:
        """A reader that never read starts after the newest event (the history is not its to read)."""
        self.execute(
            "INSERT INTO cursors (name, seq) SELECT ?, COALESCE(MAX(seq), 0) FROM events "
            "WHERE true ON CONFLICT (name) DO NOTHING",  # WHERE: SQLite parses ON CONFLICT after a SELECT only so
            (name,),
        )

    def move_cursor(self, name: str, seq: int) -> None:
        self.execute(
            "INSERT INTO cursors (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
            (name, seq),
        )

    def claim_notification(self, key: str, subscription: str, *, event: str, seq: int) -> bool:
        """Record that this happening is being sent to this subscription; False when it was before (by anyone)."""
        now = self.now()
        done = self.execute(
            "INSERT INTO notifications (key, subscription, event, seq, status, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, 'sending', ?, ?) ON CONFLICT (key, subscription) DO NOTHING",
            (key, subscription, event, seq, now, now),
        )
        return bool(done.rowcount)

    def record_notification(self, key: str, subscription: str, *, status: str, outcome: str) -> None:
        self.execute(
            "UPDATE notifications SET status = ?, outcome = ?, updated_at = ? WHERE key = ? AND subscription = ?",
            (status, outcome[:500], self.now(), key, subscription),
        )

    def settle_notifications(self, *, sending_before: float, forget_before: float) -> None:
        """Sends a stopped replica left unfinished are recorded as unknown (never sent again); old records go."""
        self.execute(
            "UPDATE notifications SET status = 'unknown', "
            "outcome = 'the replica sending it stopped; it may or may not have arrived', updated_at = ? "
            "WHERE status = 'sending' AND updated_at < ?",
            (self.now(), sending_before),
        )
        self.execute("DELETE FROM notifications WHERE created_at < ?", (forget_before,))

    # -- schedules ----------------------------------------------------------------------------
    def insert_schedule(self, schedule: dict[str, Any]) -> bool:
        """A new schedule; False when one of that name exists. Its created_at is the origin of its `every` ticks,
        so it is the one the caller computed the first tick from."""
        now = schedule["created_at"]
        done = self.execute(
            "INSERT INTO schedules (name, spec, paused, next_at, last_data, created_by, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
            (
                schedule["name"],
                jsonsafe.dumps(schedule["spec"]),
                int(schedule.get("paused", False)),
                schedule.get("next_at"),
                schedule.get("last_data"),
                schedule["created_by"],
                now,
                now,
            ),
        )
        return bool(done.rowcount)

    def schedule(self, name: str, *, lock: bool = False) -> dict[str, Any] | None:
        row = self.execute(
            f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE name = ?{self.dialect.lock() if lock else ''}", (name,)
        ).fetchone()
        return schedule_of(row) if row else None

    def update_schedule(self, name: str, **fields: Any) -> None:
        encoded = {
            k: jsonsafe.dumps(v) if k == "spec" else int(v) if isinstance(v, bool) else v for k, v in fields.items()
        }
        encoded["updated_at"] = self.now()
        assignments = ", ".join(f"{key} = ?" for key in encoded)
        self.execute(f"UPDATE schedules SET {assignments} WHERE name = ?", (*encoded.values(), name))

    def delete_schedule(self, name: str) -> bool:
        self.execute("DELETE FROM schedule_fires WHERE schedule = ?", (name,))
        return bool(self.execute("DELETE FROM schedules WHERE name = ?", (name,)).rowcount)

    def due_schedules(self, now: float) -> list[dict[str, Any]]:
        """Time-triggered schedules whose next tick has come, locked (others' are skipped, not waited for)."""
        rows = self.execute(
            f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE paused = 0 AND next_at IS NOT NULL AND next_at <= ? "
            f"ORDER BY next_at{self.dialect.lock(skip_locked=True)}",
            (now,),
        ).fetchall()
        return [schedule_of(row) for row in rows]

    def insert_fire(
        self,
        schedule: str,
        fire_key: str,
        *,
        tick: float | None,
        job_id: str | None,
        status: str,
        outcome: str | None = None,
    ) -> bool:
        """Record one fire; False when this tick (or data version) fired before."""
        done = self.execute(
            "INSERT INTO schedule_fires (schedule, fire_key, tick, fired_at, job_id, status, outcome) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (schedule, fire_key) DO NOTHING",
            (schedule, fire_key, tick, self.now(), job_id, status, outcome),
        )
        return bool(done.rowcount)

    def prune_fires(self, *, before: float | None, keep: int) -> None:
        """Forget ended fires older than `before` (the retention window) and all but the newest `keep` of each
        schedule; the runs they pointed at are then the retention sweep's like any other."""
        if before is not None:
            self.execute("DELETE FROM schedule_fires WHERE fired_at < ? AND status <> 'running'", (before,))
        for (name,) in self.execute("SELECT name FROM schedules").fetchall():
            self.execute(
                "DELETE FROM schedule_fires WHERE schedule = ? AND status <> 'running' AND fired_at < ("
                "SELECT fired_at FROM schedule_fires WHERE schedule = ? ORDER BY fired_at DESC LIMIT 1 OFFSET ?)",
                (name, name, keep - 1),
            )

    def update_fire(self, schedule: str, fire_key: str, *, status: str, outcome: str | None) -> None:
        self.execute(
            "UPDATE schedule_fires SET status = ?, outcome = ? WHERE schedule = ? AND fire_key = ?",
            (status, (outcome or "")[:1000] or None, schedule, fire_key),
        )

    # -- failed sign-ins, counted across replicas ------------------------------------------
    def auth_failed(self, client: str, *, free: int, window: float, max_lockout: float) -> float:
        """Count a failure of client; when it has more than `free` within `window` s, lock it out for twice
        its last lockout (1 s at first, at most max_lockout). For how many seconds it is locked out (0: not).
        Lockouts over for a window are forgotten (each replica reads the table every second)."""
        now = self.now()
        self.execute("DELETE FROM auth_failures WHERE at < ?", (now - window,))
        self.execute("DELETE FROM auth_lockouts WHERE locked_until < ?", (now - window,))
        self.execute("INSERT INTO auth_failures VALUES (?, ?)", (client, now))
        (count,) = self.execute("SELECT COUNT(*) FROM auth_failures WHERE client = ?", (client,)).fetchone()
        if count == 1:  # the first failure in a while: whatever lockout it earned before is forgiven
            self.execute("DELETE FROM auth_lockouts WHERE client = ?", (client,))
        if count <= free:
            return 0.0
        row = self.execute(f"SELECT lockout FROM auth_lockouts WHERE client = ?{self.dialect.lock()}", (client,))
        last = (row.fetchone() or (0.0,))[0]
        lockout = min(max_lockout, max(1.0, last * 2))
        self.execute(
            "INSERT INTO auth_lockouts VALUES (?, ?, ?) ON CONFLICT (client) DO UPDATE "
            "SET locked_until = excluded.locked_until, lockout = excluded.lockout",
            (client, now + lockout, lockout),
        )
        return lockout


SCHEDULE_COLUMNS = "name, spec, paused, next_at, last_data, created_by, created_at, updated_at"
FIRE_COLUMNS = "schedule, fire_key, tick, fired_at, job_id, status, outcome"


def schedule_of(row: Iterable[Any]) -> dict[str, Any]:
    found = dict(zip(SCHEDULE_COLUMNS.split(", "), row, strict=True))
    return {**found, "spec": json.loads(found["spec"]), "paused": bool(found["paused"])}


def fire_of(row: Iterable[Any]) -> dict[str, Any]:
    return dict(zip(FIRE_COLUMNS.split(", "), row, strict=True))


APPROVAL_COLUMNS = (
    "id, model, alias, version, status, requested_by, reason, gate, requested_at, expires_at, decided_by, "
    "decided_at, note"
)
_APPROVAL_NAMES = APPROVAL_COLUMNS.split(", ")


def _expired_if_due(approval: dict[str, Any], now: float) -> dict[str, Any]:
    """A pending approval past its time reads as expired (nothing needs to run to expire it)."""
    if approval["status"] == "pending" and approval["expires_at"] <= now:
        return {**approval, "status": "expired"}
    return approval


def approval_of(row: Iterable[Any]) -> dict[str, Any]:
    found = dict(zip(_APPROVAL_NAMES, row, strict=True))
    found["gate"] = json.loads(found["gate"]) if found["gate"] else None
    return found


EVENT_LOCK = 0x616D6C  # the advisory lock that orders events on PostgreSQL ("aml")
EVENT_CHANNEL = "aml_events"


class JobStore:
    """Reads shared by both databases; each implementation gives `_rows`, `write`, `close`.

    `shared` says whether other processes (replicas) may use the same store at once.
    """

    dialect: Dialect
    shared: bool = False

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        raise NotImplementedError

    async def write(self, operation: Callable[[Tx], T]) -> T:
        """Run operation(tx) in one transaction; its value, or its exception after a rollback."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def on_change(self, callback: Callable[[], object]) -> None:
        """callback() (from any thread) whenever another process commits events; only shared stores have any."""

    async def read(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """fn(*args, **kwargs): a read a request makes, in place, on the event loop.

        Measured (bench/replicas.py), a PostgreSQL read run in place beat one handed to threads on
        the 2-core test machine (0.53 against 0.39 of SQLite's GET /runs/{id} rate): the hand-off
        cost more CPU than the loop's wait on a loopback database. Across a real network (a
        millisecond per round trip) the wait dominates; this one seam is where a store's reads
        would move off the loop (psycopg's async pool), without touching its callers."""
        return fn(*args, **kwargs)

    def _jobs(self, sql: str, params: Iterable[Any] = ()) -> list[Job]:
        return [Job.from_row(row) for row in self._rows(sql, params)]

    # -- reads ---------------------------------------------------------------
    def get(self, job_id: str, *, kind: str | None = None) -> Job | None:
        found = self._jobs(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        job = found[0] if found else None
        return job if job and (kind is None or job.kind == kind) else None

    def row(self, job_id: str) -> tuple[Any, ...] | None:
        """A job's row as stored (COLUMNS), undecoded: what service.core.job_bodies keeps answers under."""
        found = self._rows(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return tuple(found[0]) if found else None

    def by_backend_run(self, run_id: str) -> Job | None:
        found = self._jobs(f"SELECT {COLUMNS} FROM jobs WHERE backend_run_id = ?", (run_id,))
        return found[0] if found else None

    def page(
        self,
        kind: str,
        *,
        status: str | None = None,
        experiment: str | None = None,
        data_version: str | None = None,
        search: str | None = None,
        ids: list[str] | None = None,
        archived: bool | None = None,
        with_params: dict[str, str] | None = None,
        limit: int = 50,
        order: Order = NEWEST,
        after: tuple[float | None, int] | None = None,
    ) -> list[Job]:
        """Jobs of a kind, newest first or in `order`. `search`: a prefix of the job id or backend run id, or
        the exact experiment, script, run name or who started it; `ids`: these jobs (by job id or backend run
        id); `archived`: only the archived runs (True), only the others (False), both (None); `with_params`: runs
        whose parameters have these values (as text); `after`: the (order value, seq) of the last job of the
        page before.

        Every read walks an index (migration 0008), so its cost does not grow with the runs kept: the default
        order walks (kind, seq); another order first walks its key's index over the jobs that have a value
        (a metric: run_metrics by (name, value, seq)), then, when the page is not full, the jobs without one
        by seq: they come last either way."""
        clauses, params = self._filters(
            kind, status=status, experiment=experiment, data_version=data_version, search=search, ids=ids
        )
        if archived is not None:  # few runs are archived: the page's own index walk meets the others at once
            clauses.append("archived = ?")
            params.append(int(archived))
        wanted = sorted((with_params or {}).items())
        way, beyond = ("ASC", ">") if order.ascending else ("DESC", "<")
        if order.key == "created":
            if after is not None:
                clauses.append(f"seq {beyond} ?")
                params.append(after[1])
            if wanted:  # newest first along run_params' (name, value, seq) index: a page costs its rows, however
                (name, value), rest = wanted[0], wanted[1:]  # many runs share the value
                for other, also in rest:
                    clauses.append(_HAS_PARAM)
                    params += [other, also]
                sql = (
                    f"SELECT {JOINED} FROM run_params p JOIN jobs ON jobs.seq = p.job_seq WHERE p.name = ? "
                    f"AND p.value = ? AND {' AND '.join(clauses)} ORDER BY p.job_seq {way} LIMIT ?"
                )
                return self._jobs(sql, (name, value, *params, limit))
            where = " AND ".join(clauses)
            return self._jobs(f"SELECT {COLUMNS} FROM jobs WHERE {where} ORDER BY seq {way} LIMIT ?", (*params, limit))
        for name, value in wanted:  # in another order: the few runs with the value by their seqs (its index),
            seqs = self._param_seqs(name, value)  # or, when they are many, a probe of each run the sort meets
            if seqs is None:
                clauses.append(_HAS_PARAM)
                params += [name, value]
            else:
                clauses.append(f"seq IN ({self.dialect.marks(seqs)})" if seqs else "1 = 0")
                params += sorted(seqs)
        found: list[Job] = []
        if after is None or after[0] is not None:
            found = self._with_value(order, clauses, params, after, limit)
        if len(found) < limit and order.key != "started":  # a start is never missing: it falls back to created
            found += self._without_value(order, clauses, params, after, limit - len(found))
        return found

    def _filters(
        self,
        kind: str,
        *,
        status: str | None,
        experiment: str | None,
        data_version: str | None,
        search: str | None,
        ids: list[str] | None,
    ) -> tuple[list[str], list[Any]]:
        clauses: list[str] = ["kind = ?"]
        params: list[Any] = [kind]
        if search:
            found = self._search_seqs(kind, search)
            if found is None:  # matches are many: the page's own index walk meets them early
                by_id, id_params = self.dialect.prefix("id", search)
                by_run, run_params = self.dialect.prefix("backend_run_id", search)
                named = " OR ".join(f"jobs.{column} = ?" for column in SPEC_COLUMNS)  # beside run_metrics' name
                clauses.append(f"({by_id} OR {by_run} OR {named})")
                params += [*id_params, *run_params, *(search for _ in SPEC_COLUMNS)]
            else:
                clauses.append(f"seq IN ({self.dialect.marks(found)})" if found else "1 = 0")
                params += sorted(found)
        if ids:
            marks = self.dialect.marks(ids)
            clauses.append(f"(id IN ({marks}) OR backend_run_id IN ({marks}))")
            params += [*ids, *ids]
        for column, value in (("status", status), ("experiment", experiment), ("data_version", data_version)):
            if value:  # each a column of its own, indexed with the kind (migration 0008)
                clauses.append(f"{column} = ?")
                params.append(value)
        return clauses, params

    def _search_seqs(self, kind: str, search: str) -> set[int] | None:
        """The jobs a search matches, each way looked up in its own index (a prefix of the id or backend run id,
        an exact experiment, script or starter); None when they are more than SEARCH_SET: then the page walks
        its order's index with the search as a filter, and a match is met within its first rows. (A search
        matching a few thousand runs, all old, still walks far: the case in between, stated in docs/scale.md.)"""
        found: set[int] = set()
        ways = [self.dialect.prefix("id", search), self.dialect.prefix("backend_run_id", search)]
        ways += [(f"kind = ? AND {column} = ?", [kind, search]) for column in SPEC_COLUMNS]
        for where, params in ways:
            rows = self._rows(f"SELECT seq FROM jobs WHERE {where} LIMIT ?", (*params, SEARCH_SET + 1))
            found.update(row[0] for row in rows)
            if len(found) > SEARCH_SET:
                return None
        return found

    def _param_seqs(self, name: str, value: str) -> set[int] | None:
        """The runs whose parameter `name` has this value, through run_params' (name, value) index; None when
        they are more than SEARCH_SET (then they are dense enough for a sort's walk to meet them early)."""
        rows = self._rows(
            "SELECT job_seq FROM run_params WHERE name = ? AND value = ? LIMIT ?", (name, value, SEARCH_SET + 1)
        )
        return None if len(rows) > SEARCH_SET else {row[0] for row in rows}

    def _with_value(
        self, order: Order, clauses: list[str], params: list[Any], after: tuple[float | None, int] | None, limit: int
    ) -> list[Job]:
        key = order.column()
        way, beyond = ("ASC", ">") if order.ascending else ("DESC", "<")
        where, values = list(clauses), list(params)
        if order.table is not None:
            source, seq = f"{order.table} m JOIN jobs ON jobs.seq = m.job_seq", "m.job_seq"
            where.insert(0, "m.name = ?")
            values.insert(0, order.metric)
            if order.key == "param":
                where.append("m.number IS NOT NULL")
        else:
            source, seq = "jobs", "seq"
            where.append(f"{key} IS NOT NULL")
        if after is not None:
            where.append(f"({key}, {seq}) {beyond} (?, ?)")
            values += [after[0], after[1]]
        sql = f"SELECT {COLUMNS} FROM {source} WHERE {' AND '.join(where)} ORDER BY {key} {way}, {seq} {way} LIMIT ?"
        return self._jobs(sql, (*values, limit))

    def _without_value(
        self, order: Order, clauses: list[str], params: list[Any], after: tuple[float | None, int] | None, limit: int
    ) -> list[Job]:
        way, beyond = ("ASC", ">") if order.ascending else ("DESC", "<")
        where, values = list(clauses), list(params)
        if order.table is not None:
            number = " AND m.number IS NOT NULL" if order.key == "param" else ""
            where.append(
                f"NOT EXISTS (SELECT 1 FROM {order.table} m WHERE m.job_seq = jobs.seq AND m.name = ?{number})"
            )
            values.append(order.metric)
        else:
            where.append(f"{order.column()} IS NULL")
        if after is not None and after[0] is None:
            where.append(f"seq {beyond} ?")
            values.append(after[1])
        sql = f"SELECT {COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY seq {way} LIMIT ?"
        return self._jobs(sql, (*values, limit))

    def unfinished(self, terminal: frozenset[str]) -> list[Job]:
        marks = self.dialect.marks(terminal)
        sql = f"SELECT {COLUMNS} FROM jobs WHERE pending = 1 AND status NOT IN ({marks}) ORDER BY seq"
        return self._jobs(sql, tuple(terminal))

    def undelivered_callbacks(self, terminal: frozenset[str]) -> list[Job]:
        marks = self.dialect.marks(terminal)
        owes = self.dialect.owes_delivery()
        sql = f"SELECT {COLUMNS} FROM jobs WHERE pending = 1 AND status IN ({marks}) AND {owes} ORDER BY seq"
        return self._jobs(sql, tuple(terminal))

    def events_after(
        self, seq: int, *, job_id: str | None = None, limit: int = 500, with_job: bool = False
    ) -> list[tuple]:
        """(seq, topic, data as JSON text) of the events after seq, oldest first (with_job: job_id before data)."""
        columns = "seq, topic, job_id, data" if with_job else "seq, topic, data"
        params: tuple[Any, ...]
        if job_id is None:
            sql, params = f"SELECT {columns} FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        else:
            sql = f"SELECT {columns} FROM events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?"
            params = (job_id, seq, limit)
        return [tuple(row) for row in self._rows(sql, params)]

    def event_bounds(self) -> tuple[int, int]:
        """The oldest kept and the newest event seq (0, 0 when there is none)."""
        low, high = self._rows("SELECT MIN(seq), MAX(seq) FROM events")[0]
        return low or 0, high or 0

    def counts(self) -> dict[tuple[str, str], int]:
        """How many jobs there are of each (kind, status)."""
        rows = self._rows("SELECT kind, status, COUNT(*) FROM jobs GROUP BY kind, status")
        return {(kind, status): count for kind, status, count in rows}

    def runs_reading(self, data_version: str) -> int:
        """How many runs read this data version (the (kind, data_version, seq) index, counted)."""
        return self._rows("SELECT COUNT(*) FROM jobs WHERE kind = 'run' AND data_version = ?", (data_version,))[0][0]

    def jobs_where(self, kind: str, key: str, value: str, *, limit: int = 50) -> list[Job]:
        """Jobs of a kind whose spec has key = value (a string), newest first (the deployments of one endpoint)."""
        sql = (
            f"SELECT {COLUMNS} FROM jobs WHERE kind = ? AND {self.dialect.contains('spec')} "
            f"AND {self.dialect.field('spec', key)} = ? ORDER BY seq DESC LIMIT ?"
        )
        return self._jobs(sql, (kind, json.dumps(value), value, limit))

    def imported_without_model(self, *, since: float) -> list[Job]:
        """Imported runs that completed after `since` and have no model version recorded yet."""
        sql = (
            f"SELECT {COLUMNS} FROM jobs WHERE kind = 'run' AND status = 'Completed' AND finished_at > ? "
            f"AND {self.dialect.flag('spec', 'imported')} AND {self.dialect.field('result', 'model_version')} IS NULL"
        )
        return self._jobs(sql, (since,))

    def expired(self, terminal: frozenset[str], *, ended_before: float, limit: int = 1000) -> list[Job]:
        """Ended jobs that finished before that time and owe no callback or chat notice, oldest first."""
        marks = self.dialect.marks(terminal)
        sql = (
            f"SELECT {COLUMNS} FROM jobs WHERE status IN ({marks}) AND finished_at < ? "
            f"AND NOT {self.dialect.owes_delivery()} "
            # a schedule's history points at its runs: kept while the schedule keeps the fire
            "AND NOT EXISTS (SELECT 1 FROM schedule_fires f WHERE f.job_id = jobs.id) ORDER BY finished_at LIMIT ?"
        )
        return self._jobs(sql, (*terminal, ended_before, limit))

    def swept(self, run_id: str) -> bool:
        """Whether the retention sweep removed this backend run's job (so it is never imported again)."""
        return bool(self._rows("SELECT 1 FROM swept_runs WHERE run_id = ?", (run_id,)))

    def undiscarded_runs(self) -> list[str]:
        """Runs whose jobs the sweep removed but whose files it has not removed yet (it was stopped between)."""
        return [row[0] for row in self._rows("SELECT run_id FROM swept_runs WHERE discarded = 0")]

    def revoked_sessions(self, *, now: float) -> dict[str, float]:
        """Session ids revoked and not yet expired, with when each expires."""
        return dict(self._rows("SELECT session_id, expires FROM revoked_sessions WHERE expires > ?", (now,)))

    async def revoke_session(self, session_id: str, *, expires: float) -> None:
        await self.write(lambda tx: tx.revoke_session(session_id, expires=expires))

    def approvals(self, *, status: str | None = None, model: str | None = None, limit: int = 200) -> list[dict]:
        """Approvals, newest first (pending ones past their time read as expired)."""
        now = time.time()
        clauses: list[str] = []
        params: list[Any] = []
        if status == "pending":
            clauses.append("status = 'pending' AND expires_at > ?")
            params.append(now)
        elif status == "expired":
            clauses.append("(status = 'expired' OR (status = 'pending' AND expires_at <= ?))")
            params.append(now)
        elif status:
            clauses.append("status = ?")
            params.append(status)
        if model:
            clauses.append("model = ?")
            params.append(model)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._rows(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals{where} ORDER BY requested_at DESC LIMIT ?", (*params, limit)
        )
        return [_expired_if_due(approval_of(row), now) for row in rows]

    def approval(self, approval_id: str) -> dict[str, Any] | None:
        rows = self._rows(f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?", (approval_id,))
        return _expired_if_due(approval_of(rows[0]), time.time()) if rows else None

    def notifications(self, *, limit: int = 100, status: str | None = None) -> list[dict[str, Any]]:
        """Deliveries of registry events, newest first."""
        where, params = (" WHERE status = ?", [status]) if status else ("", [])
        rows = self._rows(
            "SELECT key, subscription, event, seq, status, outcome, created_at, updated_at FROM notifications"
            f"{where} ORDER BY created_at DESC, seq DESC LIMIT ?",
            (*params, limit),
        )
        names = ("key", "subscription", "event", "seq", "status", "outcome", "created_at", "updated_at")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def schedules(self) -> list[dict[str, Any]]:
        return [schedule_of(row) for row in self._rows(f"SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY name")]

    def schedule_read(self, name: str) -> dict[str, Any] | None:
        rows = self._rows(f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE name = ?", (name,))
        return schedule_of(rows[0]) if rows else None

    def fires(self, schedule: str | None = None, *, status: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """A schedule's fires (or every schedule's), newest first."""
        clauses, params = [], []
        if schedule is not None:
            clauses.append("schedule = ?")
            params.append(schedule)
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._rows(
            f"SELECT {FIRE_COLUMNS} FROM schedule_fires{where} ORDER BY fired_at DESC LIMIT ?", (*params, limit)
        )
        return [fire_of(row) for row in rows]

    def lockouts(self) -> dict[str, float]:
        """Clients locked out for failing too often (by any replica), with for how many seconds more (measured
        by the database's clock, so each replica adds them to its own)."""
        if self.dialect.postgres:
            now = "EXTRACT(EPOCH FROM clock_timestamp())::float8"
            return dict(
                self._rows(f"SELECT client, locked_until - {now} FROM auth_lockouts WHERE locked_until > {now}")
            )
        now_local = time.time()
        rows = self._rows("SELECT client, locked_until FROM auth_lockouts WHERE locked_until > ?", (now_local,))
        return {client: until - now_local for client, until in rows}

    async def auth_failed(self, client: str, *, free: int, window: float, max_lockout: float) -> float:
        return await self.write(lambda tx: tx.auth_failed(client, free=free, window=window, max_lockout=max_lockout))
