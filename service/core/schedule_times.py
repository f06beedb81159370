"""When a schedule fires: a cron expression in a time zone, a fixed interval, or each new version of a data path.

Cron is parsed by cronsim (DST-aware: a time a spring-forward skips fires at the first moment after it,
one an autumn fall-back repeats fires once). `every` takes a number and a unit (`30s`, `15m`, `6h`,
`1d`), at least one second, counted from when the schedule was made (so replicas agree on the ticks).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from amllib.errors import InvalidInput, quoted
from amllib.names import check_name

EVERY = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MOST_SECONDS = 366 * 86400.0
MISSED = ("once", "skip")


@dataclass(frozen=True)
class Trigger:
    cron: str | None = None
    timezone: str = "UTC"
    every: str | None = None
    on_data: str | None = None

    @classmethod
    def of(cls, given: Any) -> Trigger:
        """The trigger a request names; InvalidInput saying what is wrong."""
        if not isinstance(given, dict):
            raise InvalidInput('trigger is {"cron": "0 3 * * 1", "timezone": …}, {"every": "6h"} or {"on_data": path}')
        kinds = [k for k in ("cron", "every", "on_data") if given.get(k) is not None]
        if len(kinds) != 1:
            raise InvalidInput("trigger names exactly one of cron, every or on_data")
        unknown = sorted(set(given) - {"cron", "every", "on_data", "timezone"})
        if unknown:
            raise InvalidInput(f"trigger has unknown fields {', '.join(map(repr, unknown[:5]))}")
        trigger = cls(
            cron=given.get("cron"),
            timezone=given.get("timezone") or "UTC",
            every=given.get("every"),
            on_data=given.get("on_data"),
        )
        trigger.check()
        return trigger

    def check(self) -> None:
        if self.cron is not None:
            if not isinstance(self.cron, str) or len(self.cron) > 200:
                raise InvalidInput("trigger.cron is a cron expression such as '0 3 * * 1'")
            try:
                CronSim(self.cron, datetime.now(self.zone()))
            except (CronSimError, ValueError) as exc:
                raise InvalidInput(f"trigger.cron {quoted(self.cron, 60)} is not a cron expression: {exc}") from None
        if self.every is not None:
            self.seconds()
        if self.on_data is not None:
            if not isinstance(self.on_data, str):
                raise InvalidInput("trigger.on_data names a datastore path")
            for part in self.on_data.split("/"):
                check_name(part, what="trigger.on_data")
        self.zone()

    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(str(self.timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(f"trigger.timezone {quoted(str(self.timezone), 60)} is not a time zone") from None

    def seconds(self) -> float:
        found = EVERY.match(str(self.every).strip())
        if not found:
            raise InvalidInput(
                f"trigger.every is a number and a unit (30s, 15m, 6h, 1d), not {quoted(str(self.every), 40)}"
            )
        seconds = float(found.group(1)) * UNITS[found.group(2)]
        if not math.isfinite(seconds) or not 1.0 <= seconds <= MOST_SECONDS:
            raise InvalidInput("trigger.every is between 1 s and 366 days")
        return seconds

    def next_after(self, moment: float, *, origin: float) -> float | None:
        """The first tick strictly after `moment` (None: a data trigger has no ticks). `every` counts from origin."""
        if self.cron is not None:
            start = datetime.fromtimestamp(moment, self.zone())
            return next(CronSim(self.cron, start)).astimezone(UTC).timestamp()
        if self.every is not None:
            step = self.seconds()
            return origin + (math.floor((moment - origin) / step) + 1) * step
        return None

    def as_dict(self) -> dict[str, Any]:
        if self.cron is not None:
            return {"cron": self.cron, "timezone": self.timezone}
        if self.every is not None:
            return {"every": self.every}
        return {"on_data": self.on_data}
