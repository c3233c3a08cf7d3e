"""Persistence of decisions, behind a repository the desk sees only as a Protocol (a fake runs it in
unit tests; `dispatch.pg.PgRepository` on PostgreSQL).

A unit of work is one database transaction: the desk locks the cases it is about to change, reads
which messages were already processed, decides in memory and hands the unit one `Changes`: the case
rows, their transitions, deadlines, routing decisions, orders, deliveries, processed messages and
outbox records, which commit together or not at all. The database and the emitted events cannot
diverge (transactional outbox). A unit may carry one change (an operator's action, a deadline) or a
whole consumer batch; the rows are the same either way.

Lock order, everywhere: the case rows first, in case_id order (`lock_cases`), then their deadline
rows. Deadline firing follows the same order (see deadlines.py), which keeps concurrent instances
free of deadlocks.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import msgspec

from dispatch.domain.case import Case, Outcome, Transition
from dispatch.domain.messages import LIFECYCLE_CE_TYPE, ORDER_CE_TYPE, dispatch_order, lifecycle_event
from onegrid.envelope import CloudEvent
from onegrid.kafka import OutRecord
from onegrid.topics import ORDERS_TOPIC_TEMPLATE

SOURCE = "/onegrid/dispatch"
Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: str


@dataclass(frozen=True)
class Outlets:
    """Where a decision's messages go: topics, and webhooks for departments without Kafka."""

    lifecycle_topic: str
    orders_topic: str = ORDERS_TOPIC_TEMPLATE
    webhooks: dict[str, Webhook] = field(default_factory=dict)

    def orders_for(self, department: str) -> str:
        return self.orders_topic.format(department=department)


@dataclass(frozen=True)
class MessageKey:
    """A message's idempotency key in its namespace: who may send it (`source`: `case`, the case
    events intake publishes; `feedback`, a department's feedback; `action`, an operator's
    Idempotency-Key) and on whose behalf (`caller`: intake, the department's code, the operator's
    subject). Keys of different namespaces never meet, so no sender can claim, and so suppress,
    another's message id (e.g. intake's deterministic event ids)."""

    source: str
    caller: str
    id: str


# Rows from before the namespaces (migration 0004): their sender is not known. Only what they
# applied counts as a duplicate of the same message on the same case; a refusal claimed nothing.
LEGACY = "legacy"


@dataclass(frozen=True, slots=True)
class Processed:
    """A message the desk has dealt with, and how (`applied`, `noted`, `refused:<reason>`)."""

    key: MessageKey
    case_id: str | None
    outcome: str
    at: datetime


def first_outcome(rows: list[Processed], key: MessageKey, case_id: str | None) -> str | None:
    """The first outcome of `key` among processed `rows` of its message id, or of the same message
    id applied to the same case before the namespaces existed."""
    own = next((r.outcome for r in rows if r.key == key), None)
    if own is not None:
        return own
    return next(
        (
            r.outcome
            for r in rows
            if r.key.source == LEGACY and r.case_id == case_id and r.outcome in ("applied", "noted")
        ),
        None,
    )


@dataclass(frozen=True, slots=True)
class CaseRow:
    case: Case
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DeadlineRow:
    deadline_id: str
    case_id: str
    kind: str
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Settled:
    """A running deadline that stopped running: `fired` (its transition is in the same unit) or `cleared`."""

    deadline_id: str
    status: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RoutingRow:
    event_id: str
    case_id: str
    decision: str  # JSON
    decided_at: datetime
    rule_set: str | None  # the id of the rules it looked at (Changes.rule_sets)


@dataclass(frozen=True, slots=True)
class OrderRow:
    order_id: str
    case_id: str
    department: str
    kind: str
    hop: int
    issued_at: datetime
    body: bytes  # JSON, as sent


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    delivery_id: str
    order_id: str
    department: str
    url: str
    body: bytes
    created_at: datetime
    traceparent: str | None


@dataclass
class Changes:
    """Everything one unit of work writes, in the order it was decided. A case changed several times
    keeps its last row; every transition, deadline, order and message of the steps between is kept."""

    cases: dict[str, CaseRow] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    deadlines: list[DeadlineRow] = field(default_factory=list)
    settled: list[Settled] = field(default_factory=list)
    routing: list[RoutingRow] = field(default_factory=list)
    # The rule sets the routing decisions name, by id (as JSON): written where not stored yet.
    rule_sets: dict[str, str] = field(default_factory=dict)
    orders: list[OrderRow] = field(default_factory=list)
    deliveries: list[DeliveryRow] = field(default_factory=list)
    processed: list[Processed] = field(default_factory=list)
    outbox: list[OutRecord] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.cases or self.processed or self.settled)

    def claim(self, key: MessageKey, case_id: str | None, outcome: str, at: datetime) -> None:
        self.processed.append(Processed(key, case_id, outcome, at))

    def add(self, before: Case | None, out: Outcome, now: datetime, outlets: Outlets, trace: Headers) -> None:
        """The rows and records of one decision: the case after it, its transitions, the deadlines it
        armed and settled, its routing decision and orders (with webhook deliveries), and one
        lifecycle event per transition. `trace`: the traceparent its messages continue."""
        c = out.case
        self.cases[c.case_id] = CaseRow(c, now)
        self.transitions += out.transitions
        self._deadlines(before, out, now)
        records = [
            _lifecycle_record(snap, t, outlets, trace)
            for snap, t in zip(out.snapshots, out.transitions, strict=True)
        ]
        if out.decision is not None:
            decision = msgspec.json.encode(out.decision).decode()
            rules = out.rule_set
            self.routing.append(
                RoutingRow(out.transitions[0].event_id, c.case_id, decision, now, rules.id if rules else None)
            )
            if rules is not None and rules.id not in self.rule_sets:
                self.rule_sets[rules.id] = msgspec.json.encode(rules.rules).decode()
        traceparent = next((v.decode() for k, v in trace if k == "traceparent"), None)
        for o in out.orders:
            body = msgspec.json.encode(dispatch_order(c, o))
            self.orders.append(
                OrderRow(o.order_id, c.case_id, o.department, o.kind, o.hop, o.issued_at, body)
            )
            ce = CloudEvent(
                type=ORDER_CE_TYPE, source=SOURCE, id=o.order_id, time=o.issued_at, subject=c.case_id
            )
            records.append(
                OutRecord(outlets.orders_for(o.department), body, c.case_id.encode(), [*ce.headers(), *trace])
            )
            hook = outlets.webhooks.get(o.department)
            if hook is not None:
                self.deliveries.append(
                    DeliveryRow(str(uuid.uuid4()), o.order_id, o.department, hook.url, body, now, traceparent)
                )
        self.outbox += records

    def _deadlines(self, before: Case | None, out: Outcome, now: datetime) -> None:
        old = {d.deadline_id for d in before.deadlines} if before else set()
        new = {d.deadline_id: d for d in out.case.deadlines}
        fired = {t.deadline_id for t in out.transitions if t.deadline_id}
        for gone in sorted(old - set(new)):
            self.settled.append(Settled(gone, "fired" if gone in fired else "cleared", now))
        self.deadlines += [
            DeadlineRow(d.deadline_id, out.case.case_id, d.kind, d.due_at)
            for i, d in new.items()
            if i not in old
        ]

    def order_topics(self, outlets: Outlets) -> list[str]:
        return sorted({outlets.orders_for(o.department) for o in self.orders})


class Unit(Protocol):
    """One transaction. Nothing is written before `write`; leaving the unit normally commits, an
    exception rolls everything back."""

    async def lock_cases(self, case_ids: list[str], *, skip_locked: bool = False) -> dict[str, Case]:
        """The known cases among `case_ids`, their rows locked until the unit ends, in case_id order
        (with skip_locked, a case locked elsewhere is left out as if unknown)."""
        ...

    async def processed(self, message_ids: list[str]) -> list[Processed]:
        """What was processed under any of `message_ids`, in every namespace (`first_outcome`)."""
        ...

    async def claim(self, processed: list[Processed]) -> set[MessageKey]:
        """Record the messages as processed; the keys recorded now (a key missing from the answer was
        processed concurrently by another instance, which committed first)."""
        ...

    async def now(self) -> datetime:
        """The database's clock, the one clock all dispatch instances share: due times are computed
        and transitions stamped on it, so instances whose own clocks disagree still agree on when a
        deadline is due. Read after the case locks, so a decision that waited on a lock is stamped
        after the one it waited for."""
        ...

    async def deadline_status(self, deadline_id: str) -> str | None:
        """The deadline's status, its row locked until the unit ends."""
        ...

    async def refuse_deadline(self, deadline_id: str, reason: str, now: datetime) -> None:
        """A deadline that cannot fire: `cleared` when stale, else `refused`, with the reason."""
        ...

    async def write(self, changes: Changes) -> None: ...


class Repository(Protocol):
    def unit(self) -> AbstractAsyncContextManager[Unit]: ...


def _lifecycle_record(case: Case, t: Transition, outlets: Outlets, trace: Headers) -> OutRecord:
    body = msgspec.json.encode(lifecycle_event(case, t))
    ce = CloudEvent(type=LIFECYCLE_CE_TYPE, source=SOURCE, id=t.event_id, time=t.at, subject=case.case_id)
    return OutRecord(outlets.lifecycle_topic, body, case.case_id.encode(), [*ce.headers(), *trace])
