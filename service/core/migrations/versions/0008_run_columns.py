"""What the runs list filters and sorts on, in columns and a table of their own, indexed (issue 31).

Before: a search, a filter by experiment or data version, and a sort by duration, start or a metric
read every run's JSON. After: `experiment`, `script`, `started_by`, `created_by` (the spec's) and
`data_version` (the result's) are columns; the last numeric value of each metric of each run is a row of
`run_metrics` (job seq, name, value), indexed by (name, value, job seq) so a metric sort walks the index;
duration and start have expression indexes; PostgreSQL gets `text_pattern_ops` indexes, which serve a
prefix (`LIKE 'x%'`) under any collation.

Live upgrade: the columns are added without a default (no rewrite), then filled by one UPDATE and one
INSERT … SELECT, then indexed. While it runs, writes to jobs wait (reads go on); measured by
bench/store_reads.py --migrate (README, "A million runs").
"""

from alembic import op

revision = "0008"
down_revision = "0007"

COLUMNS = ("experiment", "script", "started_by", "created_by")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    real = "DOUBLE PRECISION" if postgres else "REAL"
    seq = "BIGINT" if postgres else "INTEGER"
    for column in (*COLUMNS, "data_version"):
        op.execute(f"ALTER TABLE jobs ADD COLUMN {column} TEXT")
    op.execute(
        f"CREATE TABLE run_metrics (job_seq {seq} NOT NULL, name TEXT NOT NULL, value {real} NOT NULL, "
        "PRIMARY KEY (job_seq, name))"
    )
    if postgres:
        fields = ", ".join(f"{c} = spec::jsonb ->> '{c}'" for c in COLUMNS)
        op.execute(f"UPDATE jobs SET {fields}, data_version = result::jsonb ->> 'data_version'")
        op.execute(
            "INSERT INTO run_metrics (job_seq, name, value) "
            "SELECT j.seq, m.key, (m.value #>> '{}')::double precision "
            "FROM jobs j, jsonb_each(CASE WHEN jsonb_typeof(j.result::jsonb -> 'metrics') = 'object' "
            "THEN j.result::jsonb -> 'metrics' ELSE '{}'::jsonb END) m "
            "WHERE j.kind = 'run' AND jsonb_typeof(m.value) = 'number' "
            "AND abs((m.value #>> '{}')::numeric) <= 1.7976931348623157e308"
        )
    else:
        fields = ", ".join(f"{c} = json_extract(spec, '$.{c}')" for c in COLUMNS)
        op.execute(f"UPDATE jobs SET {fields}, data_version = json_extract(result, '$.data_version')")
        op.execute(
            "INSERT INTO run_metrics (job_seq, name, value) "
            "SELECT j.seq, m.key, m.value FROM jobs j, json_each(j.result, '$.metrics') m "
            "WHERE j.kind = 'run' AND json_type(j.result, '$.metrics') = 'object' "
            "AND m.type IN ('integer', 'real') AND m.value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308"
        )
    op.execute("CREATE INDEX run_metrics_order ON run_metrics (name, value, job_seq)")
    for column in (*COLUMNS, "data_version", "status"):
        op.execute(f"CREATE INDEX jobs_{column} ON jobs (kind, {column}, seq)")
    op.execute("CREATE INDEX jobs_started ON jobs (kind, (COALESCE(started_at, created_at)), seq)")
    op.execute("CREATE INDEX jobs_duration ON jobs (kind, (finished_at - started_at), seq)")
    if postgres:  # a prefix under any collation: LIKE 'x%' on text_pattern_ops (SQLite's BINARY ranges need none)
        op.execute("CREATE INDEX jobs_id_prefix ON jobs (id text_pattern_ops)")
        op.execute("CREATE INDEX jobs_run_prefix ON jobs (backend_run_id text_pattern_ops)")


def downgrade() -> None:
    """Back to 0007 (the bench times an upgrade of a store of a million runs with it)."""
    for index in (
        *(f"jobs_{c}" for c in (*COLUMNS, "data_version", "status", "started", "duration")),
        "run_metrics_order",
    ):
        op.execute(f"DROP INDEX {index}")
    op.execute("DROP INDEX IF EXISTS jobs_id_prefix")
    op.execute("DROP INDEX IF EXISTS jobs_run_prefix")
    op.execute("DROP TABLE run_metrics")
    for column in (*COLUMNS, "data_version"):
        op.execute(f"ALTER TABLE jobs DROP COLUMN {column}")
