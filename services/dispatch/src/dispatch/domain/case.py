"""The case as dispatch holds it (one aggregate per case_id), and what a decision produces.

Everything here is a msgspec Struct so the store persists a case as one JSON document and reads it
back unchanged; `Case.state` and the counters are also columns for queries.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from dispatch.domain.facts import Actor, CaseFacts, ReturnReason
from dispatch.domain.routing import RoutingDecision, RuleSet, Sla
from dispatch.domain.states import Action, State

SYSTEM = Actor(kind="system", id="dispatch", display="系统")


class _S(msgspec.Struct, frozen=True, kw_only=True):
    pass


class Deadline(_S, frozen=True):
    """A running deadline; `deadline_id` is new every time one is armed, so each fires at most once."""

    deadline_id: str
    kind: str  # acknowledge | resolve | arbitrate | verify
    due_at: datetime
    # What due_at was computed on: "24x7", or the working-day calendar's version (registry_client.workcal).
    calendar_version: str | None = None


class PausedDeadline(_S, frozen=True):
    kind: str
    remaining_s: float


class LiveOrder(_S, frozen=True):
    """An order whose feedback dispatch still accepts (the current hop's assign/whistle/assist)."""

    order_id: str
    department: str
    kind: str


class Counters(_S, frozen=True):
    hops: int = 0  # dispatches (dispatch, reassign, arbitrate): the ping-pong count
    reworks: int = 0  # 返工
    reopens: int = 0
    escalations: int = 0  # 吹哨
    returns: int = 0  # 退单


class Case(_S, frozen=True):
    case_id: str
    state: State
    facts: CaseFacts
    tier: str
    sla: Sla
    registered_at: datetime
    department: str | None = None
    orders: tuple[LiveOrder, ...] = ()
    counters: Counters = Counters()
    deadlines: tuple[Deadline, ...] = ()
    paused: tuple[PausedDeadline, ...] = ()
    previous_state: State | None = None  # where resume / unmerge go back to
    merged_into: str | None = None
    last_return: ReturnReason | None = None
    previous_department: str | None = None
    routing: RoutingDecision | None = None
    first_resolve_by: datetime | None = None  # for 按期结案: the deadline as first set
    # 核查结案: when the running verification deadline (kind "verify") of a resolved case is due and
    # the calendar it was computed on, as lifecycle events and the evaluation state them.
    verify_by: datetime | None = None
    verify_calendar_version: str | None = None
    closed_at: datetime | None = None
    resolved_by: str | None = None  # who resolved last (kind:id): never the one who verifies
    seq: int = 0

    def deadline(self, kind: str) -> Deadline | None:
        return next((d for d in self.deadlines if d.kind == kind), None)


class Transition(_S, frozen=True):
    """One persisted state change; exactly one lifecycle event is emitted for it."""

    event_id: str
    case_id: str
    seq: int
    from_state: State | None
    to_state: State
    action: Action
    actor: Actor
    reason: str | None
    note: str | None
    at: datetime
    deadline_id: str | None  # the deadline whose firing caused it
    # Evidence references (object-store keys naming the files' SHA-256) the actor attached: in the
    # lifecycle event, so the audit trail holds the hashes of the photos of a self-handling or a check.
    evidence: tuple[str, ...] = ()


class Order(_S, frozen=True):
    order_id: str
    case_id: str
    department: str
    hop: int
    kind: str  # assign | whistle | assist
    issued_at: datetime
    acknowledge_by: datetime
    resolve_by: datetime
    previous_department: str | None
    instructions: str | None


class Outcome(_S, frozen=True):
    case: Case
    transitions: tuple[Transition, ...]
    orders: tuple[Order, ...] = ()
    snapshots: tuple[Case, ...] = ()  # the case right after each transition (its lifecycle event's view)
    # A registration's routing decision, and the rules it looked at (stored once per set).
    decision: RoutingDecision | None = None
    rule_set: RuleSet | None = None


class Refused(Exception):
    """An action refused, with a stable reason code and a sentence for people."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
