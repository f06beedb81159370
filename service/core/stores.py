"""Which job store the settings name: the embedded SQLite file, or a PostgreSQL database replicas share."""

from __future__ import annotations

from amllib.settings import Settings
from service.core.store import JobStore


def open_store(settings: Settings) -> JobStore:
    """The job store of AZML_DB_URL, its schema migrated to the newest this code knows."""
    if settings.db_on_postgres:
        from service.core.store_postgres import PostgresStore  # psycopg is loaded only by those who use it

        return PostgresStore(settings.db_url or "")
    from service.core.store_sqlite import SqliteStore

    return SqliteStore(settings.db_path, synchronous=settings.db_synchronous)
