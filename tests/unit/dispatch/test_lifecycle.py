"""The closed loop's rules beyond the table: routing, deadlines, whistle, arbitration, pause, rework,
reopen, and the guards that refuse bad commands."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import msgspec
import pytest

from dispatch.domain.case import Refused
from dispatch.domain.facts import decode_case
from dispatch.domain.lifecycle import Command, Lifecycle
from dispatch.domain.routing import Directory
from dispatch.domain.states import Action, State

from .drive import DEPT, NOW, STAFF, case_in, command, dispatched, registered
from .sample import as_records, case_bytes, registry_records

A, S = Action, State


def test_street_case_with_a_rule_is_registered_then_dispatched_with_both_deadlines(
    lifecycle: Lifecycle,
) -> None:
    out = lifecycle.register(decode_case(case_bytes(tier="street")), NOW)
    assert [(t.from_state, t.to_state) for t in out.transitions] == [
        (None, S.REGISTERED),
        (S.REGISTERED, S.DISPATCHED),
    ]
    (order,) = out.orders
    assert (order.department, order.kind, order.hop) == ("hj-urban-mgmt", "assign", 1)
    assert order.acknowledge_by == NOW + timedelta(seconds=1800)
    assert {d.kind for d in out.case.deadlines} == {"acknowledge", "resolve"}
    assert (
        out.case.routing is not None and out.case.routing.versions.grid_version == "2026-02-28T16:00:00Z#412"
    )


def test_small_grid_case_waits_for_the_grid_worker(lifecycle: Lifecycle) -> None:
    case = registered(lifecycle)
    assert case.state is S.REGISTERED and case.department is None
    assert [d.kind for d in case.deadlines] == ["resolve"]
    done = lifecycle.decide(case, command(A.SELF_HANDLE, case), NOW).case
    assert done.state is S.RESOLVED


def test_the_resolver_never_verifies_its_own_work(lifecycle: Lifecycle) -> None:
    """Before: a grid worker self-handled then verified, closing its own case alone."""
    case = registered(lifecycle)
    done = lifecycle.decide(case, command(A.SELF_HANDLE, case), NOW).case
    own = dataclasses.replace(command(A.VERIFY, done), actor=STAFF)
    with pytest.raises(Refused) as refused:
        lifecycle.decide(done, own, NOW)
    assert refused.value.reason == "verify.same_actor"
    assert lifecycle.decide(done, command(A.VERIFY, done), NOW).case.state is S.CLOSED
    assert case.state is S.REGISTERED


def test_a_grid_case_the_sla_does_not_leave_to_the_grid_goes_to_its_department(
    directory: Directory,
) -> None:
    """Before: every grid-tier case waited for the grid worker, whatever its category."""
    decision = directory.route(decode_case(case_bytes(category="env.air.exceedance", tier="grid", level=4)))
    assert decision.tier == "grid" and not decision.self_handle
    assert decision.departments == ("hj-eco-env",)
    allowed = directory.route(decode_case(case_bytes(category="city.street_vending", tier="grid", level=4)))
    assert allowed.self_handle and allowed.departments == ("hj-urban-mgmt",)


def test_self_handling_is_refused_for_a_category_the_sla_does_not_allow() -> None:
    """Before: a case left without a department (no rule, no command centre to fall back to) could be
    closed by a grid worker's self-handling, whatever its category and the SLA."""
    bare = [r for r in registry_records() if r["kind"] not in ("routing_rule", "department")]
    lifecycle = Lifecycle(Directory(as_records(bare)))
    air = lifecycle.register(
        decode_case(case_bytes(category="env.air.exceedance", tier="grid", level=4)), NOW
    )
    assert air.case.state is S.REGISTERED and air.case.department is None
    with pytest.raises(Refused) as refused:
        lifecycle.decide(air.case, command(A.SELF_HANDLE, air.case), NOW)
    assert refused.value.reason == "self_handle.category_not_allowed"
    assert "env.air.exceedance" in refused.value.detail


def test_self_handling_follows_the_sla_in_force_when_the_worker_acts() -> None:
    """A policy that stops allowing a category stops the self-handling of cases already waiting."""
    allowing = Lifecycle(Directory(as_records(registry_records())))
    waiting = registered(allowing)
    withdrawn = [
        r | {"self_handle_categories": []} if r["kind"] == "sla_policy" else r for r in registry_records()
    ]
    with pytest.raises(Refused) as refused:
        Lifecycle(Directory(as_records(withdrawn))).decide(waiting, command(A.SELF_HANDLE, waiting), NOW)
    assert refused.value.reason == "self_handle.category_not_allowed"
    assert allowing.decide(waiting, command(A.SELF_HANDLE, waiting), NOW).case.state is S.RESOLVED


def test_severity_raises_the_tier(directory: Directory) -> None:
    assert directory.route(decode_case(case_bytes(tier="grid", level=1))).tier == "city"
    assert directory.route(decode_case(case_bytes(tier="grid", level=3))).tier == "street"
    assert directory.route(decode_case(case_bytes(tier="grid", level=4))).self_handle


def test_no_rule_falls_back_to_the_territorial_unit(directory: Directory) -> None:
    decision = directory.route(decode_case(case_bytes(category="safety.dispute", tier="street")))
    assert decision.departments == ("xs-command",) and decision.rule_code is None


def test_most_specific_sla_wins(directory: Directory) -> None:
    assert directory.sla(decode_case(case_bytes(category="env.air.exceedance"))).code == "env-fast"
    assert directory.sla(decode_case(case_bytes())).code == "default"


def test_missed_acknowledge_whistles_up_the_tiers_then_stops_at_the_top(lifecycle: Lifecycle) -> None:
    case = dispatched(lifecycle)
    seen = []
    while case.deadline("acknowledge"):
        dl = case.deadline("acknowledge")
        assert dl is not None
        out = lifecycle.fire(case, dl.deadline_id, dl.due_at)
        assert out.transitions[0].deadline_id == dl.deadline_id
        assert out.transitions[0].reason == "sla.acknowledge_overdue"
        seen.append((out.case.tier, sorted(o.department for o in out.orders)))
        case = out.case
        with pytest.raises(Refused, match=r"deadline\.stale"):
            lifecycle.fire(case, dl.deadline_id, dl.due_at)
    # district already (the department's own tier is not lower than street): city centre, supervisor
    assert seen[0] == ("district", ["hj-command", "hj-gov"])
    assert seen[-1][0] == "city"
    assert case.state is S.ESCALATED and case.counters.escalations == len(seen)
    assert case.deadline("acknowledge") is None


def test_acknowledge_after_a_whistle_is_accepted_from_the_whistled_centre(lifecycle: Lifecycle) -> None:
    case = dispatched(lifecycle)
    out = lifecycle.decide(case, Command(A.ESCALATE, reason="operator.escalate"), NOW)
    whistle = next(o for o in out.orders if o.department == "hj-command")
    acked = lifecycle.decide(
        out.case, Command(A.ACKNOWLEDGE, actor=DEPT, order_id=whistle.order_id), NOW
    ).case
    assert acked.state is S.ACKNOWLEDGED and acked.department == "hj-urban-mgmt"
    assert acked.deadline("acknowledge") is None and acked.deadline("resolve") is not None


def test_return_goes_to_arbitration_then_falls_back_to_the_territorial_unit(lifecycle: Lifecycle) -> None:
    case = case_in(lifecycle, S.RETURNED)
    assert case.counters.returns == 1 and [d.kind for d in case.deadlines] == ["arbitrate"]
    dl = case.deadlines[0]
    out = lifecycle.fire(case, dl.deadline_id, dl.due_at)
    assert out.case.state is S.DISPATCHED and out.case.department == "xs-command"
    assert out.transitions[0].action is A.ARBITRATE and out.case.counters.hops == 2
    assert out.orders[0].previous_department == "hj-urban-mgmt" and out.orders[0].hop == 2


def test_suspend_pauses_the_clock_and_resume_gives_the_time_back(lifecycle: Lifecycle) -> None:
    case = dispatched(lifecycle)
    left = {d.kind: d.due_at - NOW for d in case.deadlines}
    later = NOW + timedelta(seconds=600)
    s = lifecycle.decide(case, Command(A.SUSPEND, reason="suspend.awaiting_permit"), later).case
    assert s.deadlines == () and {p.kind for p in s.paused} == {"acknowledge", "resolve"}
    resumed_at = later + timedelta(days=2)
    r = lifecycle.decide(s, Command(A.RESUME), resumed_at).case
    assert r.state is S.DISPATCHED
    assert {d.kind: d.due_at - resumed_at for d in r.deadlines} == {
        k: v - timedelta(seconds=600) for k, v in left.items()
    }


def test_failed_verification_is_rework_and_is_counted(lifecycle: Lifecycle) -> None:
    case = case_in(lifecycle, S.RESOLVED)
    out = lifecycle.decide(case, Command(A.REWORK, actor=STAFF), NOW)
    assert out.case.state is S.IN_PROGRESS and out.case.counters.reworks == 1
    assert out.orders[0].department == "hj-urban-mgmt" and out.orders[0].hop == 1


def test_reopen_only_within_the_window_and_it_redispatches(lifecycle: Lifecycle) -> None:
    closed = case_in(lifecycle, S.CLOSED)
    with pytest.raises(Refused, match=r"reopen\.window_passed"):
        lifecycle.decide(closed, Command(A.REOPEN), NOW + timedelta(days=4))
    out = lifecycle.decide(closed, Command(A.REOPEN), NOW + timedelta(days=1))
    assert [t.to_state for t in out.transitions] == [S.REOPENED, S.DISPATCHED]
    assert out.case.counters.reopens == 1 and out.case.closed_at is None


@pytest.mark.parametrize(
    ("cmd", "reason"),
    [
        (Command(A.ACKNOWLEDGE, order_id="00000000-0000-4000-8000-000000000000"), "feedback.unknown_order"),
        (Command(A.SUSPEND), "suspend.reason_missing"),
        (Command(A.CANCEL), "cancel.reason_missing"),
        (Command(A.REASSIGN, department="nobody"), "department.unknown"),
        (Command(A.REASSIGN, department="hj-urban-mgmt"), "reassign.same_department"),
        (Command(A.MERGE), "merge.target_invalid"),
    ],
)
def test_guards_refuse_with_a_reason(lifecycle: Lifecycle, cmd: Command, reason: str) -> None:
    with pytest.raises(Refused) as info:
        lifecycle.decide(dispatched(lifecycle), cmd, NOW)
    assert info.value.reason == reason


def test_resolve_without_evidence_and_feedback_from_another_department_are_refused(
    lifecycle: Lifecycle,
) -> None:
    case = dispatched(lifecycle)
    order = case.orders[0].order_id
    with pytest.raises(Refused, match=r"evidence\.missing"):
        lifecycle.decide(case, Command(A.RESOLVE, order_id=order), NOW)
    with pytest.raises(Refused, match=r"feedback\.department_mismatch"):
        lifecycle.decide(case, Command(A.ACKNOWLEDGE, order_id=order, department="hj-eco-env"), NOW)


def test_whistle_rule_calls_every_department_to_report() -> None:
    records = registry_records()
    records.append(
        {
            **records[6],
            "code": "vending-whistle",
            "priority": 1,
            "departments": ["hj-urban-mgmt", "hj-eco-env"],
            "whistle": True,
        }
    )
    out = Lifecycle(Directory(as_records(records))).register(decode_case(case_bytes()), NOW)
    assert [(o.department, o.kind) for o in out.orders] == [
        ("hj-urban-mgmt", "whistle"),
        ("hj-eco-env", "whistle"),
    ]


def test_case_round_trips_through_json(lifecycle: Lifecycle) -> None:
    from dispatch.domain.case import Case

    case = case_in(lifecycle, S.ESCALATED)
    assert msgspec.json.decode(msgspec.json.encode(case), type=Case) == case


def test_a_patrol_report_is_registered_in_its_grid_workers_name(lifecycle: Lifecycle) -> None:
    event = msgspec.json.decode(case_bytes(network="patrol", tier="grid"))
    event["attributes"] = {"worker_id": "grid_worker:gw-a", "photos": [{"sha256": "ab" * 32}]}
    out = lifecycle.register(decode_case(msgspec.json.encode(event)), NOW)
    assert (out.transitions[0].actor.kind, out.transitions[0].actor.id) == ("staff", "grid_worker:gw-a")
    other = lifecycle.register(decode_case(case_bytes(network="party")), NOW)
    assert other.transitions[0].actor.kind == "system"
