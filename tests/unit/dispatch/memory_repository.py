"""The desk's repository in memory, for unit tests: the tables of the dispatch schema as dicts and
lists with the same rows PostgreSQL would hold (dispatch.pg). A unit works on a copy that replaces the
tables when it ends normally, so an exception rolls everything back."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from dispatch.domain.case import Case
from dispatch.store import Changes, MessageKey, Processed

Row = dict[str, Any]
# The database's clock (dispatch.pg reads clock_timestamp()): still here, so that one unit per message
# and one unit per batch leave the same rows.
DB_TIME = datetime(2026, 3, 1, 2, 0, 1, tzinfo=UTC)


@dataclass
class Tables:
    cases: dict[str, Row] = field(default_factory=dict)
    transitions: list[Row] = field(default_factory=list)
    deadlines: dict[str, Row] = field(default_factory=dict)
    routing_decisions: list[Row] = field(default_factory=list)
    routing_rule_sets: dict[str, Any] = field(default_factory=dict)
    orders: list[Row] = field(default_factory=list)
    deliveries: list[Row] = field(default_factory=list)
    processed: dict[MessageKey, Row] = field(default_factory=dict)
    outbox: list[Row] = field(default_factory=list)


class MemoryUnit:
    """Reads and writes `t` (the unit's copy); every write is also kept in `ops`, to be replayed on
    the shared tables at commit, so units running concurrently on disjoint cases each keep their
    rows, as transactions do."""

    def __init__(self, t: Tables, clock: Callable[[], datetime] = lambda: DB_TIME) -> None:
        self.t = t
        self._clock = clock
        self.ops: list[Callable[[Tables], object]] = []

    def _do(self, op: Callable[[Tables], Any]) -> Any:
        self.ops.append(op)
        return op(self.t)

    async def now(self) -> datetime:
        return self._clock()

    async def lock_cases(self, case_ids: list[str], *, skip_locked: bool = False) -> dict[str, Case]:
        return {
            c: msgspec.json.decode(json.dumps(self.t.cases[c]["body"]), type=Case)
            for c in sorted(case_ids)
            if c in self.t.cases
        }

    async def processed(self, message_ids: list[str]) -> list[Processed]:
        ids = set(message_ids)
        rows = [r for k, r in self.t.processed.items() if k.id in ids]
        return [Processed(r["key"], r["case_id"], r["outcome"], r["at"]) for r in rows]

    async def claim(self, processed: list[Processed]) -> set[MessageKey]:
        fresh: set[MessageKey] = self._do(lambda t: _claim(t, processed))
        return fresh

    async def deadline_status(self, deadline_id: str) -> str | None:
        row = self.t.deadlines.get(deadline_id)
        return None if row is None else str(row["status"])

    async def refuse_deadline(self, deadline_id: str, reason: str, now: datetime) -> None:
        self._do(lambda t: _refuse_deadline(t, deadline_id, reason, now))

    async def write(self, changes: Changes) -> None:
        self._do(lambda t: _write(t, changes))


def _claim(t: Tables, processed: list[Processed]) -> set[MessageKey]:
    fresh = set()
    for p in processed:
        if p.key not in t.processed:
            t.processed[p.key] = {
                "key": p.key,
                "case_id": p.case_id,
                "outcome": p.outcome,
                "at": p.at,
            }
            fresh.add(p.key)
    return fresh


def _refuse_deadline(t: Tables, deadline_id: str, reason: str, now: datetime) -> None:
    row = t.deadlines.get(deadline_id)
    if row is not None:
        status = "cleared" if reason == "deadline.stale" else "refused"
        row.update(status=status, settled_at=now, detail=reason)


def _write(t: Tables, changes: Changes) -> None:
    for r in changes.cases.values():
        c = r.case
        old = t.cases.get(c.case_id)
        t.cases[c.case_id] = {
            "case_id": c.case_id,
            "state": c.state.value,
            "department": c.department,
            "tier": c.tier,
            "grid": c.facts.division.grid if old is None else old["grid"],  # not updated on conflict
            "hops": c.counters.hops,
            "body": json.loads(msgspec.json.encode(c)),
            "registered_at": c.registered_at if old is None else old["registered_at"],
            "updated_at": r.updated_at,
        }
    for tr in changes.transitions:
        t.transitions.append(json.loads(msgspec.json.encode(tr)))
    for d in changes.deadlines:
        t.deadlines[d.deadline_id] = {
            "deadline_id": d.deadline_id,
            "case_id": d.case_id,
            "kind": d.kind,
            "due_at": d.due_at,
            "status": "running",
            "settled_at": None,
            "detail": None,
        }
    for s in changes.settled:
        row = t.deadlines.get(s.deadline_id)
        if row is not None and row["status"] == "running":
            row.update(status=s.status, settled_at=s.at)
    t.routing_decisions += [
        {
            "event_id": r.event_id,
            "case_id": r.case_id,
            "decision": json.loads(r.decision),
            "decided_at": r.decided_at,
            "rule_set": r.rule_set,
        }
        for r in changes.routing
    ]
    for rule_set, rules in changes.rule_sets.items():
        t.routing_rule_sets.setdefault(rule_set, json.loads(rules))
    t.orders += [
        {
            "order_id": o.order_id,
            "case_id": o.case_id,
            "department": o.department,
            "kind": o.kind,
            "hop": o.hop,
            "issued_at": o.issued_at,
            "body": json.loads(o.body),
        }
        for o in changes.orders
    ]
    t.deliveries += [
        {
            "delivery_id": d.delivery_id,
            "order_id": d.order_id,
            "department": d.department,
            "url": d.url,
            "body": d.body,
            "next_attempt_at": d.created_at,
            "created_at": d.created_at,
            "traceparent": d.traceparent,
        }
        for d in changes.deliveries
    ]
    t.outbox += [
        {
            "id": len(t.outbox) + i + 1,
            "topic": r.topic,
            "key": r.key,
            "value": r.value,
            "headers": list(r.headers),
            "partition": r.partition,
        }
        for i, r in enumerate(changes.outbox)
    ]


class MemoryRepository:
    def __init__(self) -> None:
        self.tables = Tables()
        self.units = 0  # units of work committed

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[MemoryUnit]:
        unit = MemoryUnit(copy.deepcopy(self.tables))
        yield unit
        for op in unit.ops:  # committed: the unit's writes land on the tables as they are now
            op(self.tables)
        self.units += 1
