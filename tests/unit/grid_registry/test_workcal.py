"""Working days and hours on China's official calendar: holidays skipped, 调休 make-up days worked."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from registry_client.workcal import BEIJING, LAST_YEAR, WorkCalendar

CAL = WorkCalendar()


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=BEIJING)  # type: ignore[misc]


def test_the_pinned_package_covers_2004_to_2026() -> None:
    assert CAL.version == "cn-statutory/chinese-calendar-1.11.0(2004-2026)"


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 10, 1), False),  # 国庆节
        (date(2026, 10, 7), False),
        (date(2026, 10, 8), True),
        (date(2026, 10, 10), True),  # a Saturday, worked in exchange (调休)
        (date(2026, 9, 20), True),  # a Sunday, worked in exchange
        (date(2026, 2, 14), True),  # Saturday before the Spring Festival, worked
        (date(2026, 2, 17), False),  # 春节
        (date(2026, 2, 23), False),  # a Monday inside the Spring Festival holiday
        (date(2026, 2, 28), True),  # Saturday after it, worked
        (date(2026, 3, 7), False),  # an ordinary Saturday
    ],
)
def test_holidays_and_make_up_days(day: date, working: bool) -> None:
    assert CAL.is_working_day(day) is working


def test_three_working_days_opened_on_the_eve_of_national_day_end_after_the_week() -> None:
    # Opened Wednesday 30 Sep 2026; 1-7 Oct are holidays; 8, 9 Oct are working days and Saturday 10 Oct
    # is the make-up day: the third working day. A weekday count would give Friday 2 Oct.
    due = CAL.add_working_days(bj(2026, 9, 30, 10, 0), 3)
    assert due == bj(2026, 10, 10, 17, 30).astimezone(UTC)


def test_working_days_across_the_spring_festival_count_the_make_up_saturday() -> None:
    # Opened Friday 13 Feb 2026: Saturday 14 Feb is worked (day 1), 15-23 Feb are holidays, Tuesday
    # 24 Feb is day 2.
    assert CAL.add_working_days(bj(2026, 2, 13, 9, 0), 2) == bj(2026, 2, 24, 17, 30).astimezone(UTC)


def test_working_hours_continue_on_the_make_up_saturday() -> None:
    # 4 office hours from Friday 13 Feb 16:00: 1.5 h that day, 2.5 h on the make-up Saturday morning.
    assert CAL.add_working_hours(bj(2026, 2, 13, 16, 0), 4) == bj(2026, 2, 14, 11, 0).astimezone(UTC)


def test_working_hours_skip_lunch_nights_and_the_national_day_week() -> None:
    assert CAL.add_working_hours(bj(2026, 9, 30, 11, 0), 2) == bj(2026, 9, 30, 14, 30).astimezone(UTC)
    # 8 h from 30 Sep 11:00: 5 h that day (11:00-12:00, 13:30-17:30), then 3 h on Thursday 8 Oct.
    assert CAL.add_working_hours(bj(2026, 9, 30, 11, 0), 8) == bj(2026, 10, 8, 11, 30).astimezone(UTC)
    # Opened during the holiday: counting starts when office opens on the next working day.
    assert CAL.add_working_hours(bj(2026, 10, 3, 9, 0), 1) == bj(2026, 10, 8, 9, 30).astimezone(UTC)


def test_beyond_the_covered_years_weekdays_are_counted_and_the_version_says_so() -> None:
    start = bj(LAST_YEAR, 12, 30, 10, 0)  # Wednesday 30 Dec 2026
    due = CAL.add_working_days(start, 3)
    assert due == bj(LAST_YEAR + 1, 1, 4, 17, 30).astimezone(UTC)  # Thu 31, Fri 1 Jan, Mon 4 Jan
    assert CAL.version_for(start, due) == CAL.version + "+weekdays-after-2026"
    assert CAL.version_for(start, CAL.add_working_days(bj(2026, 12, 1, 9, 0), 3)) == CAL.version
