"""service/core/store.py: the job store's durability settings."""

from __future__ import annotations

from pathlib import Path


def test_the_job_store_writes_with_full_sync_by_default(tmp_path: Path) -> None:
    """A job answered 202 is on disk even if the machine loses power right after (not only a process kill)."""
    import asyncio

    from service.core.store import JobStore

    for setting, expected in ((None, 2), ("NORMAL", 1)):
        store = JobStore(tmp_path / f"{setting}.sqlite", **({"synchronous": setting} if setting else {}))
        mode = asyncio.run(store.write(lambda db: db.execute("PRAGMA synchronous").fetchone()[0]))
        store.close()
        assert mode == expected, setting  # 2 = FULL, 1 = NORMAL
