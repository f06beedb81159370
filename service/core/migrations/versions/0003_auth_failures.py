"""Failed sign-ins and the lockouts they earned, shared by every replica (service/http/throttle.py)."""

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    real = "DOUBLE PRECISION" if op.get_bind().dialect.name == "postgresql" else "REAL"
    op.execute(f"CREATE TABLE auth_failures (client TEXT NOT NULL, at {real} NOT NULL)")
    op.execute("CREATE INDEX auth_failures_client ON auth_failures (client, at)")
    op.execute("CREATE INDEX auth_failures_at ON auth_failures (at)")
    op.execute(
        f"CREATE TABLE auth_lockouts (client TEXT PRIMARY KEY, locked_until {real} NOT NULL, lockout {real} NOT NULL)"
    )
