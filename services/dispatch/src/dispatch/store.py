"""PostgreSQL persistence of decisions. Every function works inside the caller's transaction, so a
case row, its transitions, deadlines, orders, deliveries and outbox records commit together or not
at all: the database and the emitted events cannot diverge (transactional outbox).

Lock order, everywhere: the case row first (`lock_case`), then its deadline rows. Deadline firing
follows the same order (see deadlines.py), which keeps concurrent instances free of deadlocks.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatch.domain.case import Case, Outcome, Transition
from dispatch.domain.messages import LIFECYCLE_CE_TYPE, ORDER_CE_TYPE, dispatch_order, lifecycle_event
from onegrid import telemetry
from onegrid.envelope import CloudEvent
from onegrid.kafka import OutRecord
from onegrid.outbox import enqueue
from onegrid.topics import ORDERS_TOPIC_TEMPLATE

SOURCE = "/onegrid/dispatch"


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


async def lock_case(conn: AsyncConnection, case_id: str, *, skip_locked: bool = False) -> Case | None:
    """The case, its row locked until the transaction ends (None when unknown, or busy with skip_locked)."""
    lock = "FOR UPDATE SKIP LOCKED" if skip_locked else "FOR UPDATE"
    raw = await conn.scalar(text(f"SELECT body::text FROM cases WHERE case_id = :c {lock}"), {"c": case_id})
    return None if raw is None else msgspec.json.decode(raw, type=Case)


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


async def claim_message(
    conn: AsyncConnection, key: MessageKey, case_id: str | None, outcome: str, now: datetime
) -> bool:
    """Record `key` as processed; False when it already was (a repeat changes nothing)."""
    got = await conn.scalar(
        text(
            "INSERT INTO processed (source, caller, message_id, case_id, outcome, at) "
            "VALUES (:s, :c_, :m, :c, :o, :t) ON CONFLICT (source, caller, message_id) DO NOTHING RETURNING 1"
        ),
        {"s": key.source, "c_": key.caller, "m": key.id, "c": case_id, "o": outcome, "t": now},
    )
    return got is not None


async def previous_outcome(conn: AsyncConnection, key: MessageKey, case_id: str | None) -> str | None:
    """The first outcome of `key`, or of the same message id applied to the same case before the
    namespaces existed."""
    outcome = await conn.scalar(
        text(
            "SELECT outcome FROM processed WHERE message_id = :m AND ((source = :s AND caller = :c_) "
            "OR (source = :legacy AND case_id = CAST(:case AS uuid) AND outcome IN ('applied', 'noted'))) "
            "ORDER BY source = :legacy LIMIT 1"
        ),
        {"m": key.id, "s": key.source, "c_": key.caller, "legacy": LEGACY, "case": case_id},
    )
    return None if outcome is None else str(outcome)


async def save(
    conn: AsyncConnection, before: Case | None, out: Outcome, now: datetime, outlets: Outlets
) -> None:
    """Persist `out` (the case after, its transitions and orders) and enqueue its messages."""
    c = out.case
    await conn.execute(
        text(
            "INSERT INTO cases (case_id, state, department, tier, grid, hops, body, registered_at, updated_at) "
            "VALUES (:id, :state, :dept, :tier, :grid, :hops, CAST(:body AS jsonb), :reg, :now) "
            "ON CONFLICT (case_id) DO UPDATE SET state = EXCLUDED.state, department = EXCLUDED.department, "
            "tier = EXCLUDED.tier, hops = EXCLUDED.hops, body = EXCLUDED.body, updated_at = EXCLUDED.updated_at"
        ),
        {
            "id": c.case_id,
            "state": c.state.value,
            "dept": c.department,
            "tier": c.tier,
            "grid": c.facts.division.grid,
            "hops": c.counters.hops,
            "body": msgspec.json.encode(c).decode(),
            "reg": c.registered_at,
            "now": now,
        },
    )
    await _transitions(conn, out)
    await _deadlines(conn, before, out, now)
    records = [
        _lifecycle_record(snap, t, outlets) for snap, t in zip(out.snapshots, out.transitions, strict=True)
    ]
    if before is None and c.routing is not None:
        await conn.execute(
            text(
                "INSERT INTO routing_decisions (event_id, case_id, decision, decided_at) "
                "VALUES (:e, :c, CAST(:d AS jsonb), :t)"
            ),
            {
                "e": out.transitions[0].event_id,
                "c": c.case_id,
                "d": msgspec.json.encode(c.routing).decode(),
                "t": now,
            },
        )
    for o in out.orders:
        body = json.dumps(dispatch_order(c, o), ensure_ascii=False).encode()
        await conn.execute(
            text(
                "INSERT INTO orders (order_id, case_id, department, kind, hop, issued_at, body) "
                "VALUES (:o, :c, :d, :k, :h, :t, CAST(:b AS jsonb))"
            ),
            {
                "o": o.order_id,
                "c": c.case_id,
                "d": o.department,
                "k": o.kind,
                "h": o.hop,
                "t": o.issued_at,
                "b": body.decode(),
            },
        )
        ce = CloudEvent(type=ORDER_CE_TYPE, source=SOURCE, id=o.order_id, time=o.issued_at, subject=c.case_id)
        records.append(OutRecord(outlets.orders_for(o.department), body, c.case_id.encode(), ce.headers()))
        hook = outlets.webhooks.get(o.department)
        if hook is not None:
            await conn.execute(
                text(
                    "INSERT INTO deliveries (delivery_id, order_id, department, url, body, next_attempt_at, "
                    "created_at, traceparent) VALUES (:id, :o, :d, :u, :b, :t, :t, :tp)"
                ),
                {
                    "id": str(uuid.uuid4()),
                    "o": o.order_id,
                    "d": o.department,
                    "u": hook.url,
                    "b": body,
                    "t": now,
                    "tp": dict(telemetry.inject([])).get("traceparent", b"").decode() or None,
                },
            )
    await enqueue(conn, records)


async def _transitions(conn: AsyncConnection, out: Outcome) -> None:
    await conn.execute(
        text(
            "INSERT INTO transitions (event_id, case_id, seq, from_state, to_state, action, actor, reason, note, at, deadline_id) "
            "VALUES (:e, :c, :s, :f, :t, :a, CAST(:actor AS jsonb), :r, :n, :at, :d)"
        ),
        [
            {
                "e": t.event_id,
                "c": t.case_id,
                "s": t.seq,
                "f": t.from_state.value if t.from_state else None,
                "t": t.to_state.value,
                "a": t.action.value,
                "actor": msgspec.json.encode(t.actor).decode(),
                "r": t.reason,
                "n": t.note,
                "at": t.at,
                "d": t.deadline_id,
            }
            for t in out.transitions
        ],
    )


async def _deadlines(conn: AsyncConnection, before: Case | None, out: Outcome, now: datetime) -> None:
    old = {d.deadline_id for d in before.deadlines} if before else set()
    new = {d.deadline_id: d for d in out.case.deadlines}
    fired = {t.deadline_id for t in out.transitions if t.deadline_id}
    gone = sorted(old - set(new))
    if gone:
        await conn.execute(
            text(
                "UPDATE deadlines SET status = CASE WHEN deadline_id = ANY(CAST(:fired AS uuid[])) THEN 'fired' ELSE 'cleared' END, "
                "settled_at = :now WHERE deadline_id = ANY(CAST(:gone AS uuid[])) AND status = 'running'"
            ),
            {"fired": sorted(fired), "gone": gone, "now": now},
        )
    added = [d for i, d in new.items() if i not in old]
    if added:
        await conn.execute(
            text("INSERT INTO deadlines (deadline_id, case_id, kind, due_at) VALUES (:i, :c, :k, :d)"),
            [{"i": d.deadline_id, "c": out.case.case_id, "k": d.kind, "d": d.due_at} for d in added],
        )


def _lifecycle_record(case: Case, t: Transition, outlets: Outlets) -> OutRecord:
    body = json.dumps(lifecycle_event(case, t), ensure_ascii=False).encode()
    ce = CloudEvent(type=LIFECYCLE_CE_TYPE, source=SOURCE, id=t.event_id, time=t.at, subject=case.case_id)
    return OutRecord(outlets.lifecycle_topic, body, case.case_id.encode(), ce.headers())
