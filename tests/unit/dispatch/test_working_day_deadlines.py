"""Deadlines of a working-day SLA are computed on China's official calendar and say which one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from dispatch.domain.facts import decode_case
from dispatch.domain.lifecycle import Lifecycle, Policy
from dispatch.domain.messages import lifecycle_event
from dispatch.domain.routing import Directory
from dispatch.domain.states import Action, State
from onegrid.workcal import WorkCalendar

from .drive import command
from .sample import as_records, case_bytes, registry_records

BJ = timezone(timedelta(hours=8))
DAY = 9 * 3600  # one working day of office time (08:30-17:30)


def working_day_lifecycle() -> Lifecycle:
    records = registry_records()
    for r in records:
        if r["kind"] == "sla_policy":
            # Our own record of the class: a 一般事件 policy, acknowledge in 2 working hours, resolve
            # in 3 working days.
            r.update(acknowledge_within_s=2 * 3600, resolve_within_s=3 * DAY, calendar="working_days")
            r["business_hours"] = {"start": "08:30", "end": "17:30"}
    return Lifecycle(Directory(as_records(records)), Policy(reopen_window_s=3 * 86400, arbitration_s=3600))


def test_a_three_working_day_sla_opened_on_the_eve_of_national_day_ends_after_the_week() -> None:
    # Before: wall-clock seconds, due 1 Oct 2026 (during the holiday). Now: office time on working days:
    # 30 Sep from 10:00 (7.5 h), 8 Oct (9 h), 9 Oct (9 h), and 1.5 h on Saturday 10 Oct, a make-up day.
    opened = datetime(2026, 9, 30, 10, 0, tzinfo=BJ)
    out = working_day_lifecycle().register(decode_case(case_bytes(tier="street")), opened.astimezone(UTC))
    by_kind = {d.kind: d for d in out.case.deadlines}
    assert by_kind["resolve"].due_at == datetime(2026, 10, 10, 10, 0, tzinfo=BJ)
    assert by_kind["acknowledge"].due_at == datetime(2026, 9, 30, 12, 0, tzinfo=BJ)
    assert by_kind["resolve"].calendar_version == WorkCalendar().version
    (order,) = out.orders
    assert order.resolve_by == datetime(2026, 10, 10, 10, 0, tzinfo=BJ)
    event = lifecycle_event(out.case, out.transitions[-1])
    assert event["deadlines"] == {
        "acknowledge_by": "2026-09-30T04:00:00Z",
        "resolve_by": "2026-10-10T02:00:00Z",
        "calendar_version": WorkCalendar().version,
        "verify_by": None,
    }


def test_a_24x7_sla_records_its_clock_too(lifecycle: Lifecycle) -> None:
    out = lifecycle.register(decode_case(case_bytes(tier="street")), datetime(2026, 9, 30, 2, 0, tzinfo=UTC))
    assert {d.calendar_version for d in out.case.deadlines} == {"24x7"}
    assert {d.kind for d in out.case.deadlines} == {"acknowledge", "resolve"}


def test_a_resolved_case_has_a_verification_deadline_on_the_working_day_calendar() -> None:
    # Resolved Friday 13 Feb 2026 at 16:00: one working day of office time is 1.5 h that Friday and
    # 7.5 h on Saturday 14 Feb, a make-up working day before the Spring Festival.
    lc = working_day_lifecycle()
    out = lc.register(decode_case(case_bytes(tier="street")), datetime(2026, 2, 13, 9, 0, tzinfo=BJ))
    resolved_at = datetime(2026, 2, 13, 16, 0, tzinfo=BJ)
    done = lc.decide(out.case, command(Action.RESOLVE, out.case), resolved_at)
    assert done.case.state is State.RESOLVED and done.case.deadlines == ()
    assert done.case.verify_by == datetime(2026, 2, 14, 16, 0, tzinfo=BJ)
    event = lifecycle_event(done.case, done.transitions[-1])
    assert event["deadlines"]["verify_by"] == "2026-02-14T08:00:00Z"
    assert event["deadlines"]["calendar_version"] == WorkCalendar().version


def test_on_a_24x7_policy_verification_is_due_a_day_after_resolving(lifecycle: Lifecycle) -> None:
    out = lifecycle.register(decode_case(case_bytes(tier="street")), datetime(2026, 9, 30, 2, 0, tzinfo=UTC))
    at = datetime(2026, 9, 30, 5, 0, tzinfo=UTC)
    done = lifecycle.decide(out.case, command(Action.RESOLVE, out.case), at)
    assert done.case.verify_by == at + timedelta(days=1)
    assert lifecycle_event(done.case, done.transitions[-1])["deadlines"]["calendar_version"] == "24x7"
