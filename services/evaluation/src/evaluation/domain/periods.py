"""Reporting periods: the city's local day, ISO week (Monday first) and month.

Periods are calendar periods of the city's civil time (China Standard Time, UTC+8, no daylight
saving: a fixed offset, so a period's bounds never depend on the tz database installed). A case
belongs to the periods containing its registration instant.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Literal

Granularity = Literal["day", "week", "month"]
GRANULARITIES: tuple[Granularity, ...] = ("day", "week", "month")
CITY_TIME = timezone(timedelta(hours=8), "CST")


def local_date(t: datetime, tz: timezone = CITY_TIME) -> date:
    return t.astimezone(tz).date()


def period_start(t: datetime, granularity: Granularity, tz: timezone = CITY_TIME) -> date:
    """The first local day of the `granularity` period containing instant `t`."""
    d = local_date(t, tz)
    if granularity == "day":
        return d
    if granularity == "week":
        return d - timedelta(days=d.weekday())
    return d.replace(day=1)


def period_end(start: date, granularity: Granularity) -> date:
    """The first local day after the period starting on `start` (exclusive end)."""
    if granularity == "day":
        return start + timedelta(days=1)
    if granularity == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def is_period_start(d: date, granularity: Granularity) -> bool:
    return period_start(datetime(d.year, d.month, d.day, 12, tzinfo=CITY_TIME), granularity) == d


def instant(d: date, tz: timezone = CITY_TIME) -> datetime:
    """Local midnight of `d` as a UTC instant (the bound to query registration times with)."""
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)
