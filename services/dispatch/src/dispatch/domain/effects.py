"""The building blocks of a decision: a Draft that records transitions as the case moves, arming of
deadlines, and issuing orders (派遣 / 吹哨)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import msgspec

from dispatch.domain.case import (
    Case,
    Deadline,
    LiveOrder,
    Order,
    Outcome,
    PausedDeadline,
    Transition,
)
from dispatch.domain.facts import Actor
from dispatch.domain.states import Action, State
from registry_client import calendar_version, due_at


def new_id() -> str:
    return str(uuid.uuid4())


class Draft:
    """The case as it moves through one decision; every `move` is one Transition."""

    def __init__(self, case: Case, deadline_id: str | None = None, evidence: tuple[str, ...] = ()) -> None:
        self.case = case
        self.transitions: list[Transition] = []
        self.orders: list[Order] = []
        self._snapshots: list[Case] = []  # the case right after each transition
        self._deadline_id = deadline_id  # attached to the first transition only
        self._evidence = evidence  # likewise: the command's evidence, on the move it made

    def replace(self, **changes: Any) -> Case:
        return msgspec.structs.replace(self.case, **changes)

    def move(
        self,
        to: State,
        action: Action,
        actor: Actor,
        now: datetime,
        reason: str | None = None,
        note: str | None = None,
        **changes: Any,
    ) -> None:
        c = self.case
        self.transitions.append(
            Transition(
                event_id=new_id(),
                case_id=c.case_id,
                seq=c.seq + 1,
                from_state=c.state if c.seq else None,
                to_state=to,
                action=action,
                actor=actor,
                reason=reason,
                note=note,
                at=now,
                deadline_id=None if self.transitions else self._deadline_id,
                evidence=() if self.transitions else self._evidence,
            )
        )
        self.case = self.replace(state=to, seq=c.seq + 1, **changes)
        self._snapshots.append(self.case)

    def outcome(self) -> Outcome:
        # changes made after the last move (orders issued, ...) belong to the last transition
        snapshots = (*self._snapshots[:-1], self.case) if self._snapshots else ()
        return Outcome(
            case=self.case,
            transitions=tuple(self.transitions),
            orders=tuple(self.orders),
            snapshots=snapshots,
        )

    @staticmethod
    def rearm(paused: tuple[PausedDeadline, ...], now: datetime) -> tuple[Deadline, ...]:
        """Paused deadlines running again with the time they had left (the SLA clock resumes)."""
        return tuple(
            Deadline(deadline_id=new_id(), kind=p.kind, due_at=now + timedelta(seconds=p.remaining_s))
            for p in paused
        )


def arm(
    case: Case,
    now: datetime,
    *,
    acknowledge: float | None = None,
    resolve: float | None = None,
    arbitrate: float | None = None,
) -> tuple[Deadline, ...]:
    """Fresh deadlines (new ids) due the given number of seconds from `now`: acknowledge and resolve
    on the case's SLA clock (office time on working days for a working-day policy), arbitrate on the
    wall clock. Each records the calendar it was computed on."""
    sla_clock: dict[str, Any] = case.sla.clock()
    wall: dict[str, Any] = {"calendar": "24x7"}
    spec = (
        ("acknowledge", acknowledge, sla_clock),
        ("resolve", resolve, sla_clock),
        ("arbitrate", arbitrate, wall),
    )
    return tuple(_deadline(k, now, s, policy) for k, s, policy in spec if s is not None)


def verification(case: Case, now: datetime) -> dict[str, Any]:
    """The fields a move to resolved sets: the verification deadline (核查结案; on the case's SLA
    clock, so on working days for a working-day policy), when it is due and on which calendar."""
    deadline = _deadline("verify", now, case.sla.verify_within_s(), case.sla.clock())
    return {
        "deadlines": (deadline,),
        "verify_by": deadline.due_at,
        "verify_calendar_version": deadline.calendar_version,
    }


def _deadline(kind: str, now: datetime, seconds: float, policy: dict[str, Any]) -> Deadline:
    due = due_at(now, int(seconds), policy)
    return Deadline(
        deadline_id=new_id(), kind=kind, due_at=due, calendar_version=calendar_version(policy, now, due)
    )


def send_orders(
    d: Draft,
    action: Action | None,
    departments: tuple[str, ...],
    kind: str,
    actor: Actor,
    now: datetime,
    reason: str | None,
    note: str | None = None,
    *,
    add: bool = False,
) -> None:
    """Issue orders to `departments` (the first owns the case when `kind` is assign).

    With a dispatching `action` (dispatch, reassign, arbitrate) the case moves to dispatched: one hop
    more, fresh acknowledge and resolve deadlines. Without one (吹哨 after an escalation, a rework
    order) the orders carry the deadlines already running, and `add` keeps the live orders.
    """
    c = d.case
    if action is not None:
        deadlines = arm(c, now, acknowledge=c.sla.acknowledge_s, resolve=c.sla.resolve_s)
        owner = departments[0]
        d.move(
            State.DISPATCHED,
            action,
            actor,
            now,
            reason,
            note,
            department=owner,
            deadlines=deadlines,
            orders=(),
            previous_department=c.department if c.department != owner else c.previous_department,
            counters=msgspec.structs.replace(c.counters, hops=c.counters.hops + 1),
            first_resolve_by=c.first_resolve_by or deadlines[1].due_at,
        )
        c = d.case
    ack = c.deadline("acknowledge")
    res = c.deadline("resolve")
    acknowledge_by = ack.due_at if ack else due_at(now, c.sla.acknowledge_s, c.sla.clock())
    resolve_by = res.due_at if res else due_at(now, c.sla.resolve_s, c.sla.clock())
    live = list(c.orders) if add else []
    for i, dept in enumerate(departments):
        this_kind = kind if i == 0 or kind == "whistle" else "assist"
        order = Order(
            order_id=new_id(),
            case_id=c.case_id,
            department=dept,
            hop=max(1, c.counters.hops),
            kind=this_kind,
            issued_at=now,
            acknowledge_by=max(acknowledge_by, now),
            resolve_by=max(resolve_by, now),
            previous_department=c.previous_department,
            instructions=note,
        )
        d.orders.append(order)
        live.append(LiveOrder(order_id=order.order_id, department=dept, kind=this_kind))
    d.case = d.replace(orders=tuple(live))
