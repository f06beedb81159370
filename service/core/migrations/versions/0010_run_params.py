"""A run's parameters beside its metrics (issue 32): `run_params (job_seq, name, value, number)`.

Each run's estimators and every `args` key is a row: `value` as the run got it (text), `number` when that
text is a plain decimal number (else NULL). A filter `?params.seed=7` finds the runs through the index
(name, value, job_seq); a sort `sort=params.estimators` walks (name, number, job_seq), like a metric.

Filled here from every run's spec, in batches of 5,000 read in seq order (the rule for `number` is the
write path's, `service.core.store.param_rows`, copied so this revision reads the same whatever that code
becomes). While it runs, writes to jobs wait on SQLite; on PostgreSQL reads and writes go on.
"""

import json
import math
import re

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"

BATCH = 5000
DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?")


def _rows(seq: int, spec_text: str) -> list[dict]:
    spec = json.loads(spec_text)
    given = {} if spec.get("estimators") is None else {"estimators": spec["estimators"]}
    args = spec.get("args")
    if isinstance(args, dict):
        given.update({k: v for k, v in args.items() if k != "estimators" or "estimators" not in given})
    rows = []
    for name, raw in given.items():
        value = raw if isinstance(raw, str) else json.dumps(raw)
        number = float(value) if DECIMAL.fullmatch(value.strip()) else None
        if number is not None and not math.isfinite(number):
            number = None
        rows.append({"job_seq": seq, "name": str(name)[:255], "value": value[:1024], "number": number})
    return rows


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    real = "DOUBLE PRECISION" if postgres else "REAL"
    seq = "BIGINT" if postgres else "INTEGER"
    op.execute(
        f"CREATE TABLE run_params (job_seq {seq} NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, "
        f"number {real}, PRIMARY KEY (job_seq, name))"
    )
    insert = sa.text("INSERT INTO run_params (job_seq, name, value, number) VALUES (:job_seq, :name, :value, :number)")
    after = 0
    while True:
        found = bind.execute(
            sa.text("SELECT seq, spec FROM jobs WHERE kind = 'run' AND seq > :after ORDER BY seq LIMIT :batch"),
            {"after": after, "batch": BATCH},
        ).fetchall()
        if not found:
            break
        rows = [row for seq_, spec in found for row in _rows(seq_, spec)]
        if rows:
            bind.execute(insert, rows)
        after = found[-1][0]
    op.execute("CREATE INDEX run_params_value ON run_params (name, value, job_seq)")
    op.execute("CREATE INDEX run_params_number ON run_params (name, number, job_seq)")


def downgrade() -> None:
    op.execute("DROP TABLE run_params")
