"""The job store's schema, versioned by Alembic; upgrade(url) brings a store to the newest version.

Both databases run the same revisions (versions/), each a numbered file. A store whose
schema is newer than this code knows (a newer replica migrated it) is refused at start-up
rather than written with old assumptions. Replicas starting at once on PostgreSQL migrate
one at a time (an advisory lock held for the migration's transaction).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

from amllib.errors import ConfigError

MIGRATION_LOCK = 0x616D6D  # the advisory lock replicas take to migrate one at a time


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    return config


def engine_url(url: str) -> str:
    """The SQLAlchemy URL of a store URL: psycopg 3 as the PostgreSQL driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def upgrade(url: str) -> str:
    """Migrate the store at url to the newest revision; the revision it is at now."""
    config = _config()
    script = ScriptDirectory.from_config(config)
    (head,) = script.get_heads()
    known = {revision.revision for revision in script.walk_revisions()}
    engine = sqlalchemy.create_engine(engine_url(url), poolclass=NullPool)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sqlalchemy.text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            current = set(MigrationContext.configure(connection).get_current_heads())
            newer = current - known
            if newer:
                raise ConfigError(
                    f"the job store's schema is at revision {', '.join(sorted(newer))}, newer than this service "
                    f"knows (up to {head}): a newer version of the service migrated it; run that version"
                )
            if current != {head}:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
    finally:
        engine.dispose()
    return head


def downgrade(url: str, revision: str) -> None:
    """Take the store at url back to `revision` (tests and benches: a store as an older service left it)."""
    config = _config()
    engine = sqlalchemy.create_engine(engine_url(url), poolclass=NullPool)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, revision)
    finally:
        engine.dispose()
