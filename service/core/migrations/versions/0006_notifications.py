"""Notifications of registry events: each delivery recorded once, and where the notifier stopped reading."""

from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    real = "DOUBLE PRECISION" if op.get_bind().dialect.name == "postgresql" else "REAL"
    # (key, subscription) is the primary key: a happening is claimed for a subscription once, before it is sent,
    # so a replica that dies while sending can never lead to a second delivery (at most once).
    op.execute(
        "CREATE TABLE notifications ("
        "key TEXT NOT NULL, subscription TEXT NOT NULL, event TEXT NOT NULL, seq BIGINT NOT NULL, "
        f"status TEXT NOT NULL, outcome TEXT, created_at {real} NOT NULL, updated_at {real} NOT NULL, "
        "PRIMARY KEY (key, subscription))"
    )
    op.execute("CREATE INDEX notifications_recent ON notifications (created_at)")
    op.execute("CREATE TABLE cursors (name TEXT PRIMARY KEY, seq BIGINT NOT NULL)")
