"""Approvals of protected alias moves (four eyes): asked by one principal, decided by another."""

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    real = "DOUBLE PRECISION" if op.get_bind().dialect.name == "postgresql" else "REAL"
    op.execute(
        "CREATE TABLE approvals ("
        "id TEXT PRIMARY KEY, model TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER, "
        "status TEXT NOT NULL, requested_by TEXT NOT NULL, reason TEXT, gate TEXT, "
        f"requested_at {real} NOT NULL, expires_at {real} NOT NULL, decided_by TEXT, decided_at {real}, note TEXT)"
    )
    op.execute("CREATE INDEX approvals_status ON approvals (status, requested_at)")
    op.execute("CREATE INDEX approvals_model ON approvals (model, alias)")
