"""Schedules (cron, every, new data) and their fires: each tick recorded once, with the run it started."""

from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    real = "DOUBLE PRECISION" if op.get_bind().dialect.name == "postgresql" else "REAL"
    op.execute(
        "CREATE TABLE schedules ("
        "name TEXT PRIMARY KEY, spec TEXT NOT NULL, paused INTEGER NOT NULL DEFAULT 0, "
        f"next_at {real}, last_data TEXT, created_by TEXT NOT NULL, created_at {real} NOT NULL, "
        f"updated_at {real} NOT NULL)"
    )
    op.execute("CREATE INDEX schedules_due ON schedules (next_at)")
    # (schedule, fire_key) is the primary key: a tick (or a data version) fires once, whichever replica
    # and however often it is tried; the run job is inserted in the same transaction.
    op.execute(
        "CREATE TABLE schedule_fires ("
        "schedule TEXT NOT NULL, fire_key TEXT NOT NULL, "
        f"tick {real}, fired_at {real} NOT NULL, job_id TEXT, status TEXT NOT NULL, outcome TEXT, "
        "PRIMARY KEY (schedule, fire_key))"
    )
    op.execute("CREATE INDEX schedule_fires_recent ON schedule_fires (schedule, fired_at)")
    op.execute("CREATE INDEX schedule_fires_open ON schedule_fires (status)")
