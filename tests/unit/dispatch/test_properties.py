"""Property: no sequence of actions, deadline firings and clock moves reaches an invalid state or
loses a deadline, and each deadline fires at most once."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.domain.case import Case, Refused
from dispatch.domain.facts import decode_case
from dispatch.domain.lifecycle import Lifecycle, Policy
from dispatch.domain.routing import Directory
from dispatch.domain.states import QUIET, TRANSITIONS, VERIFYING, WORKING, Action, State

from .drive import NOW, command
from .sample import as_records, case_bytes, registry_records

LC = Lifecycle(
    Directory(as_records(registry_records())), Policy(reopen_window_s=3 * 86400, arbitration_s=3600)
)
DISPATCHING = {Action.DISPATCH, Action.REASSIGN, Action.ARBITRATE}

step = st.one_of(
    st.tuples(st.just("act"), st.sampled_from(list(Action)), st.booleans()),
    st.tuples(st.just("fire"), st.integers(0, 2), st.booleans()),
    st.tuples(st.just("wait"), st.integers(0, 200_000), st.booleans()),
)


def check(case: Case, fired: set[str], history: list) -> None:
    assert case.state in State
    assert case.seq == len(history)
    for i, t in enumerate(history):
        assert t.seq == i + 1
        assert t.from_state == (history[i - 1].to_state if i else None)
    ids = [d.deadline_id for d in case.deadlines]
    assert len(ids) == len(set(ids)) and not fired & set(ids), "a fired deadline is running again"
    assert len({d.kind for d in case.deadlines}) == len(case.deadlines)
    if case.state in WORKING and not case.deadlines:
        # the only state allowed to run none: escalated with nobody above to whistle to
        assert case.state is State.ESCALATED
        assert LC.directory.escalation(case.facts, case.tier)[1] is None
    if case.state in QUIET:
        assert not case.deadlines
    if case.state in VERIFYING:
        # the verification deadline alone, or none once the verification reached the top tier
        assert [d.kind for d in case.deadlines] in (["verify"], [])
        if not case.deadlines:
            assert LC.directory.escalation(case.facts, case.tier)[1] is None
        else:
            assert case.verify_by == case.deadlines[0].due_at
    if case.state not in (State.SUSPENDED, State.MERGED):
        assert not case.paused
    assert (case.closed_at is not None) == (case.state is State.CLOSED)
    assert case.counters.hops == sum(1 for t in history if t.action in DISPATCHING)
    assert case.counters.reworks == sum(1 for t in history if t.action is Action.REWORK)
    assert case.counters.reopens == sum(1 for t in history if t.action is Action.REOPEN)
    for t in history:
        assert t.action is Action.REGISTER or (t.from_state, t.action) in TRANSITIONS


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tier=st.sampled_from(["grid", "street", "district"]),
    level=st.integers(1, 4),
    steps=st.lists(step, max_size=40),
)
def test_no_sequence_reaches_an_invalid_state_or_loses_a_deadline(tier: str, level: int, steps: list) -> None:
    now = NOW
    out = LC.register(decode_case(case_bytes(tier=tier, level=level)), now)
    case, history, fired = out.case, list(out.transitions), set()
    check(case, fired, history)
    for kind, arg, flag in steps:
        try:
            if kind == "wait":
                now += timedelta(seconds=arg)
                continue
            if kind == "fire":
                if not case.deadlines:
                    continue
                dl = case.deadlines[arg % len(case.deadlines)]
                now = max(now, dl.due_at)
                out = LC.fire(case, dl.deadline_id, now)
                fired.add(dl.deadline_id)
            else:
                cmd = command(arg, case)
                if not flag:  # sometimes an invalid variant: no evidence, no reason, a stale order
                    cmd = type(cmd)(action=arg, order_id="00000000-0000-4000-8000-000000000000")
                out = LC.decide(case, cmd, now)
        except Refused:
            continue
        assert out.transitions, "an accepted command always records a transition"
        case = out.case
        history.extend(out.transitions)
        check(case, fired, history)
