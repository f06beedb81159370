"""The one way times are written for people and other programs: ISO 8601 in UTC (metadata.json, the API)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(timestamp: float | None) -> str | None:
    """Epoch seconds as ISO 8601 in UTC (None stays None: a time not reached yet)."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat()
