"""China's official working-day calendar (工作日), and deadlines counted in working days and hours.

SLAs in China count 工作日: Monday to Friday, minus the statutory holidays, plus the announced make-up
working days (调休: a Saturday or Sunday worked in exchange for a longer holiday). The State Council
publishes each year's arrangement in November of the year before; the pinned package
``chinese-calendar`` (1.11.0) carries the notices for **2004-2026**. Beyond its last year the
calendar counts Monday to Friday only (no holidays, no make-up days) and says so in its version
(``...+weekdays-after-2026``), so a deadline computed on a guess is recognisable as one; updating the
pinned package (a new release per notice) removes the guess for the dates it then covers.

Deadlines (Beijing time, ``Asia/Shanghai`` = UTC+8 all year):
- ``add_working_days(start, n)``: the close of office on the n-th working day after the start's day
  (the day of opening is not counted);
- ``add_working_hours(start, h)``: h hours of office time (08:30-12:00 and 13:30-17:30 by default)
  counted from ``start``, skipping nights, lunch, weekends and holidays, and working make-up days.
Every deadline carries ``version``: the calendar it was computed on.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Final

import chinese_calendar
from chinese_calendar.constants import holidays as _HOLIDAYS

BEIJING: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
PACKAGE_VERSION: Final = str(chinese_calendar.__version__)
FIRST_YEAR: Final = min(_HOLIDAYS).year
LAST_YEAR: Final = max(_HOLIDAYS).year
OFFICE_HOURS: Final = ((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))


@functools.lru_cache(maxsize=8192)
def _is_working_day(day: date) -> bool:
    # Kept per day: the package validates its argument on every call (~130 µs a deadline counted
    # over a weekend), and the answer for a day never changes with the pinned package.
    if FIRST_YEAR <= day.year <= LAST_YEAR:
        return bool(chinese_calendar.is_workday(day))
    return day.weekday() < 5


@dataclass(frozen=True, slots=True)
class WorkCalendar:
    """The official calendar as pinned, with office hours; pure and deterministic."""

    office_hours: tuple[tuple[time, time], ...] = OFFICE_HOURS
    closed: frozenset[date] = frozenset()  # days this office is closed besides the official holidays

    @property
    def version(self) -> str:
        """The calendar's identity, recorded on every deadline computed on it."""
        return f"cn-statutory/chinese-calendar-{PACKAGE_VERSION}({FIRST_YEAR}-{LAST_YEAR})"

    def version_for(self, start: datetime, end: datetime) -> str:
        """``version``, marked when the span runs beyond the years the package covers."""
        if end.astimezone(BEIJING).year > LAST_YEAR or start.astimezone(BEIJING).year < FIRST_YEAR:
            return f"{self.version}+weekdays-after-{LAST_YEAR}"
        return self.version

    @staticmethod
    def is_working_day(day: date) -> bool:
        """A working day: Monday-Friday not a statutory holiday, or an announced make-up day (调休).
        Outside the covered years: Monday-Friday."""
        return _is_working_day(day)

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The close of office on the ``days``-th working day after ``start``'s (Beijing) day, as an
        aware UTC datetime: the day a case is opened is not counted, whatever the hour (the usual rule
        for "N 个工作日内"), and make-up days count like any working day."""
        if days < 1:
            raise ValueError("days must be at least 1")
        day = start.astimezone(BEIJING).date()
        for _ in range(days):
            day = self.next_open_day(day)
        return datetime.combine(day, self.office_hours[-1][1], BEIJING).astimezone(UTC)

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The instant when ``hours`` of office time have passed since ``start``, as aware UTC."""
        return self.add_working_time(start, timedelta(hours=hours))

    def add_working_time(self, start: datetime, span: timedelta) -> datetime:
        """The instant when ``span`` of office time has passed since ``start``, as aware UTC; a start
        outside office time counts from the next opening."""
        if span < timedelta(0):
            raise ValueError("a working time span must not be negative")
        left = span
        local = start.astimezone(BEIJING)
        day, now = local.date(), local.time().replace(tzinfo=None)
        if not self.is_open(day):
            day, now = self.next_open_day(day), time(0)
        while True:
            for opens, closes in self.office_hours:
                if now >= closes:
                    continue
                begin = max(now, opens)
                length = datetime.combine(day, closes) - datetime.combine(day, begin)
                if left <= length:
                    return (datetime.combine(day, begin, BEIJING) + left).astimezone(UTC)
                left -= length
                now = closes
            day, now = self.next_open_day(day), time(0)

    def is_open(self, day: date) -> bool:
        """A working day on which this office is not closed (``closed``: local closures on top)."""
        return self.is_working_day(day) and day not in self.closed

    def next_open_day(self, day: date) -> date:
        day += timedelta(days=1)
        while not self.is_open(day):
            day += timedelta(days=1)
        return day
