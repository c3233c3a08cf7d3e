"""Drive a case into any state through the lifecycle itself, and a valid command for any action."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec

from dispatch.domain.case import Case
from dispatch.domain.facts import Actor, ReturnReason, decode_case
from dispatch.domain.lifecycle import Command, Lifecycle
from dispatch.domain.states import Action, State

from .sample import case_bytes

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
STAFF = Actor(kind="staff", id="grid/0007", display="张三")
DEPT = Actor(kind="department", id="hj-urban-mgmt", display="邗江区城市管理局")
CHECKER = Actor(kind="staff", id="3210030090/checker", display="核查员")  # verifies: never the resolver
A, S = Action, State


def command(action: Action, case: Case | None) -> Command:
    """A command for `action` that passes every guard when (state, action) is legal."""
    live = case.orders[0] if case and case.orders else None
    other = "hj-eco-env" if case is None or case.department != "hj-eco-env" else "hj-urban-mgmt"
    return Command(
        action=action,
        actor=CHECKER if action in (A.VERIFY, A.REWORK) else STAFF if action is A.SELF_HANDLE else DEPT,
        reason="operator.test",
        department=other
        if action in (A.DISPATCH, A.REASSIGN, A.ARBITRATE)
        else (live.department if live else None),
        order_id=live.order_id if live else str(uuid.uuid4()),
        evidence=1,
        merge_into=str(uuid.uuid4()),
        return_reason=ReturnReason(
            code="return.not_our_duty", suggested_department=None, detail="非本部门职责"
        ),
    )


def registered(lc: Lifecycle) -> Case:
    """A grid-tier case waiting for the grid worker (self-handle)."""
    return lc.register(decode_case(case_bytes(tier="grid", level=4)), NOW).case


def dispatched(lc: Lifecycle) -> Case:
    return lc.register(decode_case(case_bytes(tier="street", level=4)), NOW).case


def case_in(lc: Lifecycle, state: State) -> Case:
    def go(c: Case, *actions: Action) -> Case:
        for a in actions:
            c = lc.decide(c, command(a, c), NOW).case
        return c

    d = dispatched(lc)
    paths: dict[State, Case] = {
        S.REGISTERED: registered(lc),
        S.DISPATCHED: d,
        S.ACKNOWLEDGED: go(d, A.ACKNOWLEDGE),
        S.IN_PROGRESS: go(d, A.PROGRESS),
        S.RESOLVED: go(d, A.RESOLVE),
        S.CLOSED: go(d, A.RESOLVE, A.VERIFY),
        S.RETURNED: go(d, A.RETURN),
        S.ESCALATED: go(d, A.ESCALATE),
        S.SUSPENDED: go(d, A.SUSPEND),
        S.CANCELLED: go(d, A.CANCEL),
        S.MERGED: go(d, A.MERGE),
        S.REOPENED: go(registered(lc), A.SELF_HANDLE, A.VERIFY, A.REOPEN),
    }
    if state is S.VERIFIED:  # verify closes at once, so verified is never a resting state
        return msgspec.structs.replace(paths[S.RESOLVED], state=S.VERIFIED)
    c = paths[state]
    assert c.state is state, (state, c.state)
    return c
