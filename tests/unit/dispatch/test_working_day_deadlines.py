"""Deadlines of a working-day SLA are computed on China's official calendar and say which one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from dispatch.domain.facts import decode_case
from dispatch.domain.lifecycle import Lifecycle, Policy
from dispatch.domain.messages import lifecycle_event
from dispatch.domain.routing import Directory
from dispatch.domain.states import Action, State
from registry_client.workcal import WorkCalendar

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
    assert done.case.state is State.RESOLVED
    assert done.case.verify_by == datetime(2026, 2, 14, 16, 0, tzinfo=BJ)
    # The verification deadline runs: it is the case's only deadline once it is resolved.
    (verify,) = done.case.deadlines
    assert (verify.kind, verify.due_at) == ("verify", done.case.verify_by)
    assert verify.calendar_version == WorkCalendar().version
    event = lifecycle_event(done.case, done.transitions[-1])
    assert event["deadlines"]["verify_by"] == "2026-02-14T08:00:00Z"
    assert event["deadlines"]["calendar_version"] == WorkCalendar().version


def test_on_a_24x7_policy_verification_is_due_a_day_after_resolving(lifecycle: Lifecycle) -> None:
    out = lifecycle.register(decode_case(case_bytes(tier="street")), datetime(2026, 9, 30, 2, 0, tzinfo=UTC))
    at = datetime(2026, 9, 30, 5, 0, tzinfo=UTC)
    done = lifecycle.decide(out.case, command(Action.RESOLVE, out.case), at)
    assert done.case.verify_by == at + timedelta(days=1)
    assert lifecycle_event(done.case, done.transitions[-1])["deadlines"]["calendar_version"] == "24x7"


def test_an_overdue_verification_climbs_to_the_next_tier_on_the_working_day_calendar() -> None:
    # Resolved Friday 13 Feb 2026 at 16:00, due Saturday 14 Feb 16:00 (a 调休 working day). Nobody
    # verifies: the street's verification goes to the district's command centre with a fresh working
    # day, which skips the Spring Festival week (15-23 Feb 2026) and ends Tuesday 24 Feb 16:00.
    lc = working_day_lifecycle()
    out = lc.register(decode_case(case_bytes(tier="street")), datetime(2026, 2, 13, 9, 0, tzinfo=BJ))
    case = lc.decide(
        out.case, command(Action.RESOLVE, out.case), datetime(2026, 2, 13, 16, 0, tzinfo=BJ)
    ).case
    assert case.tier == "street"
    (verify,) = case.deadlines
    fired = lc.fire(case, verify.deadline_id, verify.due_at)
    (t,) = fired.transitions
    assert (t.from_state, t.action, t.to_state) == (
        State.RESOLVED,
        Action.ESCALATE_VERIFICATION,
        State.RESOLVED,
    )
    assert (t.reason, t.deadline_id) == ("sla.verify_overdue", verify.deadline_id)
    up = fired.case
    assert up.tier == "district" and up.counters == case.counters  # not a whistle to a department
    (again,) = up.deadlines
    assert again.kind == "verify" and again.deadline_id != verify.deadline_id
    assert again.due_at == up.verify_by == datetime(2026, 2, 24, 16, 0, tzinfo=BJ)
    assert again.calendar_version == up.verify_calendar_version == WorkCalendar().version
    event = lifecycle_event(up, t)
    assert event["deadlines"]["verify_by"] == "2026-02-24T08:00:00Z"
    assert event["dimensions"]["tier"] == "district" and event["deadline_id"] == verify.deadline_id
    # District to city, then the top: nobody left above, the case stays on the city's overdue list.
    city = lc.fire(up, again.deadline_id, again.due_at).case
    assert city.tier == "city" and len(city.deadlines) == 1
    top = lc.fire(city, city.deadlines[0].deadline_id, city.deadlines[0].due_at).case
    assert top.state is State.RESOLVED and top.deadlines == () and top.verify_by is not None


def test_verifying_settles_the_verification_deadline(lifecycle: Lifecycle) -> None:
    out = lifecycle.register(decode_case(case_bytes(tier="street")), datetime(2026, 9, 30, 2, 0, tzinfo=UTC))
    done = lifecycle.decide(
        out.case, command(Action.RESOLVE, out.case), datetime(2026, 9, 30, 5, 0, tzinfo=UTC)
    )
    assert [d.kind for d in done.case.deadlines] == ["verify"]
    closed = lifecycle.decide(
        done.case, command(Action.VERIFY, done.case), datetime(2026, 9, 30, 6, 0, tzinfo=UTC)
    )
    assert closed.case.state is State.CLOSED and closed.case.deadlines == ()
    rework = lifecycle.decide(
        done.case, command(Action.REWORK, done.case), datetime(2026, 9, 30, 6, 0, tzinfo=UTC)
    )
    assert [d.kind for d in rework.case.deadlines] == ["resolve"]
