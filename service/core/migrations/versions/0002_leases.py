"""Leases: which replica carries out a job, until when; and which replica runs each singleton task."""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    real = "DOUBLE PRECISION" if op.get_bind().dialect.name == "postgresql" else "REAL"
    op.execute("ALTER TABLE jobs ADD COLUMN owner TEXT")
    op.execute(f"ALTER TABLE jobs ADD COLUMN lease_until {real}")
    op.execute("CREATE INDEX jobs_owner ON jobs (owner) WHERE owner IS NOT NULL")
    op.execute(f"CREATE TABLE leaders (name TEXT PRIMARY KEY, owner TEXT NOT NULL, lease_until {real} NOT NULL)")
