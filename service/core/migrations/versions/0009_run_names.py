"""Runs people can name (issue 32): a run's `name` and whether it is `archived`, columns of their own.

`name` (the spec's, set by PATCH /runs/{id}) is matched exactly by a search, like the experiment, through
its index (kind, name, seq); `archived` hides a run from the runs list. Both are new, so nothing is read
from the JSON: the columns start empty (NULL, 0). Adding them rewrites nothing on either database;
the index on `name` is built over NULLs, quickly.
"""

from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.execute("ALTER TABLE jobs ADD COLUMN name TEXT")
    op.execute("ALTER TABLE jobs ADD COLUMN archived INTEGER NOT NULL DEFAULT 0")
    op.execute("CREATE INDEX jobs_kind_name ON jobs (kind, name, seq)")


def downgrade() -> None:
    op.execute("DROP INDEX jobs_kind_name")
    op.execute("ALTER TABLE jobs DROP COLUMN archived")
    op.execute("ALTER TABLE jobs DROP COLUMN name")
