"""The case lifecycle (闭合运转) as an explicit table: which action is legal in which state, and where
it leads.

`TRANSITIONS[(state, action)]` is the target state; a pair absent from the table is illegal and
`refusal(state, action)` names why. Two targets are not fixed by the table and are marked
`RETURN_TO_PREVIOUS`: resume (back to the state a case was suspended in) and unmerge (back to the
state it was merged from).
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    REGISTERED = "registered"  # 立案: waiting for dispatch or the grid worker
    DISPATCHED = "dispatched"  # 派遣: an order is out, 签收 awaited
    ACKNOWLEDGED = "acknowledged"  # 签收/报到
    IN_PROGRESS = "in_progress"  # 处置中 (also rework after a failed verification)
    RESOLVED = "resolved"  # 处理反馈: the handler reports it done, with evidence
    VERIFIED = "verified"  # 核查通过
    CLOSED = "closed"  # 结案
    RETURNED = "returned"  # 退单: awaiting arbitration
    ESCALATED = "escalated"  # 吹哨: the next tier's command centre is called in
    SUSPENDED = "suspended"  # 挂起: SLA clock paused
    CANCELLED = "cancelled"  # CAP Cancel, operator cancel
    MERGED = "merged"  # a duplicate folded into another case
    REOPENED = "reopened"  # 重新打开 after closure, within the reopen window


class Action(StrEnum):
    REGISTER = "register"
    DISPATCH = "dispatch"
    SELF_HANDLE = "self_handle"  # 第一时间处置 by the grid worker
    ACKNOWLEDGE = "acknowledge"
    PROGRESS = "progress"
    RESOLVE = "resolve"
    RETURN = "return"
    ARBITRATE = "arbitrate"  # a returned case goes to a department (or 属地兜底)
    REASSIGN = "reassign"
    ESCALATE = "escalate"
    SUSPEND = "suspend"
    RESUME = "resume"
    VERIFY = "verify"  # on-site check passed
    # 核查 overdue: the verification goes up to the next tier's command centre (its supervision)
    ESCALATE_VERIFICATION = "escalate_verification"
    REWORK = "rework"  # on-site check failed: 返工
    CLOSE = "close"
    REOPEN = "reopen"
    CANCEL = "cancel"
    MERGE = "merge"
    UNMERGE = "unmerge"


RETURN_TO_PREVIOUS = "previous"
S, A = State, Action

# Where work is expected of someone, and so where a deadline runs.
# (reopened works when a reopened case waits for the grid worker; escalated runs none at the top tier)
WORKING = frozenset(
    {S.REGISTERED, S.DISPATCHED, S.ACKNOWLEDGED, S.IN_PROGRESS, S.ESCALATED, S.RETURNED, S.REOPENED}
)
# Where the check of someone's work is awaited (核查): the verification deadline runs, except at the
# top tier once the verification has climbed there.
VERIFYING = frozenset({S.RESOLVED})
TERMINAL = frozenset({S.CANCELLED})  # closed is terminal too, except for a reopen within the window
QUIET = frozenset({S.VERIFIED, S.CLOSED, S.SUSPENDED, S.MERGED, S.CANCELLED})

_HANDLING = {  # what any state in which a department holds the case allows
    A.RESOLVE: S.RESOLVED,
    A.REASSIGN: S.DISPATCHED,
    A.ESCALATE: S.ESCALATED,
    A.SUSPEND: S.SUSPENDED,
    A.CANCEL: S.CANCELLED,
    A.MERGE: S.MERGED,
}

TRANSITIONS: dict[tuple[State | None, Action], State | str] = {
    (None, A.REGISTER): S.REGISTERED,
    (S.REGISTERED, A.DISPATCH): S.DISPATCHED,
    (S.REGISTERED, A.SELF_HANDLE): S.RESOLVED,
    (S.REGISTERED, A.ESCALATE): S.ESCALATED,
    (S.REGISTERED, A.SUSPEND): S.SUSPENDED,
    (S.REGISTERED, A.CANCEL): S.CANCELLED,
    (S.REGISTERED, A.MERGE): S.MERGED,
    **{(S.DISPATCHED, a): t for a, t in _HANDLING.items()},
    (S.DISPATCHED, A.ACKNOWLEDGE): S.ACKNOWLEDGED,
    (S.DISPATCHED, A.PROGRESS): S.IN_PROGRESS,
    (S.DISPATCHED, A.RETURN): S.RETURNED,
    **{(S.ACKNOWLEDGED, a): t for a, t in _HANDLING.items()},
    (S.ACKNOWLEDGED, A.PROGRESS): S.IN_PROGRESS,
    (S.ACKNOWLEDGED, A.RETURN): S.RETURNED,
    **{(S.IN_PROGRESS, a): t for a, t in _HANDLING.items()},
    (S.IN_PROGRESS, A.PROGRESS): S.IN_PROGRESS,
    **{(S.ESCALATED, a): t for a, t in _HANDLING.items()},
    (S.ESCALATED, A.ACKNOWLEDGE): S.ACKNOWLEDGED,
    (S.ESCALATED, A.PROGRESS): S.IN_PROGRESS,
    (S.ESCALATED, A.RETURN): S.RETURNED,
    (S.RETURNED, A.ARBITRATE): S.DISPATCHED,
    (S.RETURNED, A.REASSIGN): S.DISPATCHED,
    (S.RETURNED, A.CANCEL): S.CANCELLED,
    (S.RETURNED, A.MERGE): S.MERGED,
    (S.RESOLVED, A.VERIFY): S.VERIFIED,
    (S.RESOLVED, A.REWORK): S.IN_PROGRESS,
    (S.RESOLVED, A.ESCALATE_VERIFICATION): S.RESOLVED,
    (S.VERIFIED, A.CLOSE): S.CLOSED,
    (S.CLOSED, A.REOPEN): S.REOPENED,
    (S.REOPENED, A.DISPATCH): S.DISPATCHED,
    (S.REOPENED, A.SELF_HANDLE): S.RESOLVED,
    (S.REOPENED, A.ESCALATE): S.ESCALATED,
    (S.REOPENED, A.CANCEL): S.CANCELLED,
    (S.REOPENED, A.MERGE): S.MERGED,
    (S.SUSPENDED, A.RESUME): RETURN_TO_PREVIOUS,
    (S.SUSPENDED, A.CANCEL): S.CANCELLED,
    (S.MERGED, A.UNMERGE): RETURN_TO_PREVIOUS,
}

# Why an absent pair is refused, for the states where one reason covers every illegal action.
_STATE_REASONS: dict[State, str] = {
    S.CANCELLED: "transition.case_cancelled",
    S.CLOSED: "transition.case_closed",
    S.MERGED: "transition.case_merged",
    S.SUSPENDED: "transition.case_suspended",
    S.RESOLVED: "transition.awaiting_verification",
    S.VERIFIED: "transition.awaiting_closure",
    S.RETURNED: "transition.awaiting_arbitration",
}


def target(state: State | None, action: Action) -> State | str | None:
    """The target of `action` in `state` (a State or RETURN_TO_PREVIOUS), or None when illegal."""
    return TRANSITIONS.get((state, action))


def refusal(state: State | None, action: Action) -> str:
    """A reason code for refusing `action` in `state` (call only when `target` is None)."""
    if state is None:
        return "transition.case_unknown"
    if action is A.REGISTER:
        return "transition.already_registered"
    return _STATE_REASONS.get(state, f"transition.{action.value}_not_allowed_when_{state.value}")
