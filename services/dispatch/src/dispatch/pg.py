"""The desk's repository on PostgreSQL, on the engine's own asyncpg connections (no SQL compiled per
call): one transaction per unit, reads by `= ANY($1)`, upserts from `unnest` arrays, and the
append-only tables (transitions, routing decisions, orders, deliveries, outbox) filled by COPY. A
unit costs a handful of round trips whatever the number of cases in it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch.domain.case import Case
from dispatch.store import Changes, MessageKey, Processed
from onegrid.outbox import copy_into

LOCK = (
    "SELECT case_id::text, body::text FROM cases WHERE case_id = ANY($1::uuid[]) ORDER BY case_id FOR UPDATE"
)
PROCESSED = (
    "SELECT source, caller, message_id, case_id::text, outcome, at FROM processed "
    "WHERE message_id = ANY($1::text[]) ORDER BY at"
)
UPSERT_CASES = """
INSERT INTO cases (case_id, state, department, tier, grid, hops, body, registered_at, updated_at)
SELECT id, state, dept, tier, grid, hops, body::jsonb, reg, upd
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[],
            $8::timestamptz[], $9::timestamptz[]) AS u(id, state, dept, tier, grid, hops, body, reg, upd)
ON CONFLICT (case_id) DO UPDATE SET state = EXCLUDED.state, department = EXCLUDED.department,
    tier = EXCLUDED.tier, hops = EXCLUDED.hops, body = EXCLUDED.body, updated_at = EXCLUDED.updated_at
"""
CLAIM = """
INSERT INTO processed (source, caller, message_id, case_id, outcome, at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::timestamptz[])
ON CONFLICT (source, caller, message_id) DO NOTHING RETURNING source, caller, message_id
"""
# A set already stored (by another unit, or another instance) is the same set: its id is its hash.
STORE_RULE_SETS = """
INSERT INTO routing_rule_sets (rule_set, rules)
SELECT * FROM unnest($1::text[], $2::jsonb[]) ON CONFLICT (rule_set) DO NOTHING
"""
# Only a running deadline settles: the same condition as a single UPDATE per decision.
SETTLE = """
UPDATE deadlines d SET status = u.status, settled_at = u.at
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS u(id, status, at)
WHERE d.deadline_id = u.id AND d.status = 'running'
"""
REFUSE_DEADLINE = (
    "UPDATE deadlines SET status = CASE WHEN $1 = 'deadline.stale' THEN 'cleared' ELSE 'refused' END, "
    "settled_at = $2, detail = $1 WHERE deadline_id = $3::uuid"
)


class PgUnit:
    def __init__(self, conn: Any, stored_rule_sets: frozenset[str] = frozenset()) -> None:
        self._conn = conn  # asyncpg.Connection, in a transaction
        # Rule sets known to be committed (PgRepository), and those this unit stores.
        self._stored_rule_sets = stored_rule_sets
        self.rule_sets_written: set[str] = set()

    async def lock_cases(self, case_ids: list[str], *, skip_locked: bool = False) -> dict[str, Case]:
        if not case_ids:
            return {}
        sql = LOCK + (" SKIP LOCKED" if skip_locked else "")
        rows = await self._conn.fetch(sql, case_ids)
        return {r[0]: msgspec.json.decode(r[1], type=Case) for r in rows}

    async def processed(self, message_ids: list[str]) -> list[Processed]:
        if not message_ids:
            return []
        rows = await self._conn.fetch(PROCESSED, message_ids)
        return [Processed(MessageKey(r[0], r[1], r[2]), r[3], r[4], r[5]) for r in rows]

    async def claim(self, processed: list[Processed]) -> set[MessageKey]:
        if not processed:
            return set()
        # In key order: two units claiming overlapping keys (a sender reusing an id for another
        # case, in two lanes or two instances) then wait on each other in one order, never in a cycle.
        processed = sorted(processed, key=lambda p: (p.key.source, p.key.caller, p.key.id))
        rows = await self._conn.fetch(
            CLAIM,
            [p.key.source for p in processed],
            [p.key.caller for p in processed],
            [p.key.id for p in processed],
            [p.case_id for p in processed],
            [p.outcome for p in processed],
            [p.at for p in processed],
        )
        return {MessageKey(r[0], r[1], r[2]) for r in rows}

    async def now(self) -> datetime:
        # clock_timestamp(), not now(): the transaction's start would precede a wait on a case lock
        t = await self._conn.fetchval("SELECT clock_timestamp()")
        assert isinstance(t, datetime)
        return t

    async def deadline_status(self, deadline_id: str) -> str | None:
        status = await self._conn.fetchval(
            "SELECT status FROM deadlines WHERE deadline_id = $1::uuid FOR UPDATE", deadline_id
        )
        return None if status is None else str(status)

    async def refuse_deadline(self, deadline_id: str, reason: str, now: datetime) -> None:
        await self._conn.execute(REFUSE_DEADLINE, reason, now, deadline_id)

    async def write(self, changes: Changes) -> None:
        conn, ch = self._conn, changes
        if ch.cases:
            rows = list(ch.cases.values())
            await conn.execute(
                UPSERT_CASES,
                [r.case.case_id for r in rows],
                [r.case.state.value for r in rows],
                [r.case.department for r in rows],
                [r.case.tier for r in rows],
                [r.case.facts.division.grid for r in rows],
                [r.case.counters.hops for r in rows],
                [msgspec.json.encode(r.case).decode() for r in rows],
                [r.case.registered_at for r in rows],
                [r.updated_at for r in rows],
            )
        await self._copy(
            "transitions",
            (
                "event_id",
                "case_id",
                "seq",
                "from_state",
                "to_state",
                "action",
                "actor",
                "reason",
                "note",
                "at",
                "deadline_id",
            ),
            [
                (
                    t.event_id,
                    t.case_id,
                    t.seq,
                    t.from_state.value if t.from_state else None,
                    t.to_state.value,
                    t.action.value,
                    msgspec.json.encode(t.actor).decode(),
                    t.reason,
                    t.note,
                    t.at,
                    t.deadline_id,
                )
                for t in ch.transitions
            ],
        )
        # Inserted before the settling: a deadline armed and cleared within one unit ends cleared.
        await self._copy(
            "deadlines",
            ("deadline_id", "case_id", "kind", "due_at"),
            [(d.deadline_id, d.case_id, d.kind, d.due_at) for d in ch.deadlines],
        )
        if ch.settled:
            await conn.execute(
                SETTLE,
                [s.deadline_id for s in ch.settled],
                [s.status for s in ch.settled],
                [s.at for s in ch.settled],
            )
        await self._store_rule_sets(ch.rule_sets)
        await self._copy(
            "routing_decisions",
            ("event_id", "case_id", "decision", "decided_at", "rule_set"),
            [(r.event_id, r.case_id, r.decision, r.decided_at, r.rule_set) for r in ch.routing],
        )
        await self._copy(
            "orders",
            ("order_id", "case_id", "department", "kind", "hop", "issued_at", "body"),
            [
                (o.order_id, o.case_id, o.department, o.kind, o.hop, o.issued_at, o.body.decode())
                for o in ch.orders
            ],
        )
        await self._copy(
            "deliveries",
            (
                "delivery_id",
                "order_id",
                "department",
                "url",
                "body",
                "next_attempt_at",
                "created_at",
                "traceparent",
            ),
            [
                (
                    d.delivery_id,
                    d.order_id,
                    d.department,
                    d.url,
                    d.body,
                    d.created_at,
                    d.created_at,
                    d.traceparent,
                )
                for d in ch.deliveries
            ],
        )
        await copy_into(conn, ch.outbox)

    async def _store_rule_sets(self, rule_sets: dict[str, str]) -> None:
        """The sets not known to be stored. Only the first units after a new version of the rules
        write one (the repository remembers what committed), so units running at once seldom wait
        on each other's insert of the same set."""
        new = {k: v for k, v in rule_sets.items() if k not in self._stored_rule_sets}
        if new:
            await self._conn.execute(STORE_RULE_SETS, list(new), list(new.values()))
            self.rule_sets_written.update(new)

    async def _copy(self, table: str, columns: tuple[str, ...], records: list[tuple[Any, ...]]) -> None:
        if records:
            await self._conn.copy_records_to_table(table, columns=columns, records=records)


class PgRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._stored_rule_sets: frozenset[str] = frozenset()  # committed (they are never deleted)

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[PgUnit]:
        # The pool's connection (pre-pinged, search_path set) as its asyncpg driver connection:
        # SQLAlchemy begins no transaction of its own on it, so the one here is the only one.
        async with self._engine.connect() as sa:
            raw = (await sa.get_raw_connection()).driver_connection
            assert raw is not None, "a checked-out connection has its driver connection"
            unit = PgUnit(raw, self._stored_rule_sets)
            async with raw.transaction():
                yield unit
            self._stored_rule_sets |= unit.rule_sets_written
