"""A background task that does one pass every so often and outlives its failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from amllib.errors import AmlError

log = logging.getLogger("service")


async def every(interval: float, once: Callable[[], Awaitable[object]], *, what: str) -> None:
    """await once() now and then every `interval` s, forever; a failed pass is logged and the next one runs."""
    while True:
        try:
            await once()
        except AmlError as exc:
            log.warning("%s failed: %s", what, exc)
        except Exception:
            log.exception("%s failed", what)
        await asyncio.sleep(interval)
