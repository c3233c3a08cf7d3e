"""Every (state, action) pair: the legal ones reach the table's target, the others are refused with
the table's reason, and a refusal changes nothing."""

from __future__ import annotations

import itertools

import pytest

from dispatch.domain.case import Refused
from dispatch.domain.lifecycle import Lifecycle
from dispatch.domain.states import RETURN_TO_PREVIOUS, TRANSITIONS, Action, State, refusal, target

from .drive import NOW, case_in, command, dispatched

PAIRS = list(itertools.product(list(State), list(Action)))


@pytest.mark.parametrize(("state", "action"), PAIRS, ids=[f"{s.value}-{a.value}" for s, a in PAIRS])
def test_every_state_action_pair(lifecycle: Lifecycle, state: State, action: Action) -> None:
    case = case_in(lifecycle, state)
    to = target(state, action)
    if to is None:
        with pytest.raises(Refused) as info:
            lifecycle.decide(case, command(action, case), NOW)
        assert info.value.reason == refusal(state, action)
        return
    out = lifecycle.decide(case, command(action, case), NOW)
    first = out.transitions[0]
    assert (first.from_state, first.action) == (state, action)
    expected = case.previous_state if to == RETURN_TO_PREVIOUS else to
    assert first.to_state == expected
    assert [t.seq for t in out.transitions] == list(range(case.seq + 1, case.seq + 1 + len(out.transitions)))
    for before, after in itertools.pairwise(out.transitions):
        assert after.from_state == before.to_state
    assert out.case.state == out.transitions[-1].to_state


def test_register_is_the_only_action_without_a_case(lifecycle: Lifecycle) -> None:
    for action in Action:
        with pytest.raises(Refused) as info:
            lifecycle.decide(None, command(action, None), NOW)
        assert info.value.reason == "transition.case_unknown"
    assert target(None, Action.REGISTER) is State.REGISTERED


def test_the_table_names_only_real_states_and_actions() -> None:
    for (state, action), to in TRANSITIONS.items():
        assert state is None or isinstance(state, State)
        assert isinstance(action, Action)
        assert isinstance(to, State) or to == RETURN_TO_PREVIOUS


def test_cancelled_is_absorbing(lifecycle: Lifecycle) -> None:
    case = case_in(lifecycle, State.CANCELLED)
    for action in Action:
        with pytest.raises(Refused):
            lifecycle.decide(case, command(action, case), NOW)


def test_a_refusal_names_the_state(lifecycle: Lifecycle) -> None:
    case = dispatched(lifecycle)
    with pytest.raises(Refused) as info:
        lifecycle.decide(case, command(Action.VERIFY, case), NOW)
    assert info.value.reason == "transition.verify_not_allowed_when_dispatched"
