"""When a schedule fires: cron in a time zone across DST, every counted from the origin, what is refused."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from amllib.errors import InvalidInput
from service.core.schedule_times import Trigger

LONDON = ZoneInfo("Europe/London")


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=LONDON).timestamp()


def test_cron_in_a_time_zone_across_daylight_saving() -> None:
    monday_3am = Trigger.of({"cron": "0 3 * * 1", "timezone": "Europe/London"})
    assert monday_3am.next_after(at(2026, 12, 3, 12, 0), origin=0) == at(2026, 12, 7, 3, 0)  # GMT
    assert monday_3am.next_after(at(2026, 6, 3, 12, 0), origin=0) == at(2026, 6, 8, 3, 0)  # BST: 02:00 UTC
    assert monday_3am.next_after(at(2026, 12, 7, 3, 0), origin=0) == at(2026, 12, 14, 3, 0)  # strictly after
    skipped = Trigger.of({"cron": "30 1 * * *", "timezone": "Europe/London"})  # 01:30 does not exist on 29 March
    assert skipped.next_after(at(2026, 3, 29, 0, 0), origin=0) == at(2026, 3, 29, 2, 0)


def test_every_is_counted_from_the_origin_so_replicas_agree() -> None:
    six_hours = Trigger.of({"every": "6h"})
    assert six_hours.next_after(1000.0, origin=1000.0) == 1000.0 + 6 * 3600
    assert six_hours.next_after(1000.0 + 7 * 3600, origin=1000.0) == 1000.0 + 12 * 3600
    assert Trigger.of({"every": "1.5s"}).seconds() == 1.5
    assert Trigger.of({"on_data": "titanic/data"}).next_after(0.0, origin=0.0) is None


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"cron": "0 3 * *"}, "not a cron expression"),
        ({"cron": "0 3 * * 1", "timezone": "Europe/Nowhere"}, "not a time zone"),
        ({"every": "0s"}, "between 1 s"),
        ({"every": "400d"}, "between 1 s"),
        ({"every": "6 hours"}, "number and a unit"),
        ({"every": "6h", "on_data": "x"}, "exactly one"),
        ({"every": "6h", "at": "noon"}, "unknown fields 'at'"),
        ({"on_data": "../x"}, "on_data"),
        ("6h", "trigger is"),
    ],
)
def test_what_is_refused_names_what_is_wrong(given: object, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Trigger.of(given)
    assert words in str(caught.value)
