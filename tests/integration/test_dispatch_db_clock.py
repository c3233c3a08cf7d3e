"""Deadlines on the database's clock: dispatch instances whose own clocks are hours apart compute due
times and stamp transitions with PostgreSQL's clock, judge "due now" on it (never early, never late),
and fire each deadline exactly once between them. Real PostgreSQL; Kafka is not involved (the
outbox rows stay in their table)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from support.plans import plan_nodes

from dispatch.bootstrap import MIGRATIONS
from dispatch.deadlines import DUE, DeadlineWatch
from dispatch.desk import Desk
from dispatch.domain.facts import Actor, decode_case
from dispatch.domain.lifecycle import Command, Lifecycle, Policy
from dispatch.domain.routing import Directory
from dispatch.domain.states import Action
from dispatch.store import Outlets
from onegrid.db import make_engine, migrate

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("dispatch_sample", ROOT / "tests/unit/dispatch/sample.py")
assert _spec and _spec.loader
sample = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sample)

HOURS = 3600.0


class SkewedClock:
    """An instance whose wall clock is off by `skew_s` (NTP down, a VM resumed, a wrong zone)."""

    def __init__(self, skew_s: float) -> None:
        self.skew = timedelta(seconds=skew_s)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.skew


@pytest_asyncio.fixture(loop_scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    url = "postgresql+asyncpg://" + database_url.split("://", 1)[1]
    schema = f"dispatch_clock_{uuid.uuid4().hex[:8]}"
    await migrate(url, schema, MIGRATIONS)
    eng = make_engine(url, schema, pool_size=8)
    try:
        yield eng
    finally:
        await eng.dispose()


def desk(
    engine: AsyncEngine, skew_s: float, *, ack_s: int, resolve_s: int, verify_s: int | None = None
) -> Desk:
    records = sample.registry_records(ack_s=ack_s, resolve_s=resolve_s)
    for r in records:
        if r["kind"] == "sla_policy" and verify_s is not None:
            r["verify_within_s"] = verify_s
    directory = Directory(sample.as_records(records))

    async def no_topic(name: str) -> None:
        return None

    return Desk(
        engine=engine,
        lifecycle=lambda: Lifecycle(directory, Policy(arbitration_s=HOURS)),
        clock=SkewedClock(skew_s),
        outlets=Outlets(lifecycle_topic="dispatch.lifecycle.v1"),
        ensure_topic=no_topic,
    )


async def register(d: Desk) -> str:
    facts = decode_case(json.dumps(sample.case_event(tier="street")).encode())
    assert (await d.case_event(facts)).applied
    return str(facts.case_id)


async def db_now(engine: AsyncEngine) -> datetime:
    async with engine.connect() as conn:
        t = await conn.scalar(text("SELECT clock_timestamp()"))
    assert isinstance(t, datetime)
    return t


async def wait_until_due(engine: AsyncEngine, case_ids: list[str], kind: str) -> None:
    """Until the database's clock passes the `kind` deadline of every case (a 1-second SLA; one
    stamped hours ahead by a skewed instance is not waited for: the assertions name it)."""
    while True:
        async with engine.connect() as conn:
            waiting = await conn.scalar(
                text(
                    "SELECT count(*) FROM deadlines WHERE case_id = ANY(CAST(:c AS uuid[])) "
                    "AND kind = :k AND status = 'running' AND due_at > clock_timestamp() "
                    "AND due_at < clock_timestamp() + interval '1 minute'"
                ),
                {"c": case_ids, "k": kind},
            )
        if not waiting:
            return
        await asyncio.sleep(0.2)


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def test_due_times_and_stamps_come_from_the_database_clock(engine: AsyncEngine) -> None:
    ahead = desk(engine, +2 * HOURS, ack_s=600, resolve_s=3600)
    before = await db_now(engine)
    case_id = await register(ahead)
    after = await db_now(engine)
    stamps = [r.at for r in await rows(engine, "SELECT at FROM transitions WHERE case_id = :c", c=case_id)]
    assert len(stamps) == 2  # registered, dispatched
    for at in stamps:
        assert before <= at <= after, f"stamped {at}, the database said {before}..{after}"
    due = {
        r.kind: r.due_at
        for r in await rows(engine, "SELECT kind, due_at FROM deadlines WHERE case_id = :c", c=case_id)
    }
    assert before + timedelta(seconds=600) <= due["acknowledge"] <= after + timedelta(seconds=600)
    assert before + timedelta(seconds=3600) <= due["resolve"] <= after + timedelta(seconds=3600)


async def test_an_instance_ahead_fires_nothing_early_and_one_behind_fires_on_time(
    engine: AsyncEngine,
) -> None:
    exact = desk(engine, 0, ack_s=600, resolve_s=3600)
    later = await register(exact)  # due in 10 minutes by the database's clock
    ahead = DeadlineWatch(engine, desk(engine, +2 * HOURS, ack_s=600, resolve_s=3600))
    await ahead.fire_due()
    fired_early = await rows(
        engine, "SELECT deadline_id FROM transitions WHERE case_id = :c AND deadline_id IS NOT NULL", c=later
    )
    assert fired_early == [], "an instance whose clock runs ahead fired a deadline before it was due"

    quick = desk(engine, 0, ack_s=1, resolve_s=3600)
    soon = await register(quick)
    await wait_until_due(engine, [soon], "acknowledge")
    behind = DeadlineWatch(engine, desk(engine, -2 * HOURS, ack_s=1, resolve_s=3600))
    await behind.fire_due()
    (fired,) = await rows(
        engine,
        "SELECT t.at, d.due_at FROM transitions t JOIN deadlines d USING (deadline_id) WHERE t.case_id = :c",
        c=soon,
    )
    assert fired.at >= fired.due_at, "stamped before its due time"


async def test_each_deadline_fires_once_between_instances_with_different_clocks(engine: AsyncEngine) -> None:
    start = await db_now(engine)
    quick = desk(engine, 0, ack_s=1, resolve_s=3600)
    cases = [await register(quick) for _ in range(12)]
    await wait_until_due(engine, cases, "acknowledge")
    skews = (-3 * HOURS, -1 * HOURS, 0.0, +1 * HOURS)
    watches = [DeadlineWatch(engine, desk(engine, s, ack_s=1, resolve_s=3600)) for s in skews]
    # Rounds until the whistles reach the top tier (nobody left to call: no acknowledge deadline runs).
    for _ in range(20):
        await asyncio.gather(*(w.fire_due() for w in watches))
        running = await rows(
            engine,
            "SELECT 1 FROM deadlines WHERE case_id = ANY(CAST(:c AS uuid[])) AND kind = 'acknowledge' "
            "AND status = 'running'",
            c=cases,
        )
        if not running:
            break
        await wait_until_due(engine, cases, "acknowledge")
    end = await db_now(engine)
    fired = await rows(
        engine,
        "SELECT t.deadline_id::text AS d, t.at, d.due_at FROM transitions t JOIN deadlines d USING (deadline_id) "
        "WHERE t.case_id = ANY(CAST(:c AS uuid[]))",
        c=cases,
    )
    assert len(fired) >= 2 * len(cases), "every case whistles at the street and the district at least"
    assert set(Counter(f.d for f in fired).values()) == {1}, "a deadline fired more than once"
    assert sum(w.fired for w in watches) == len(fired)
    for f in fired:
        assert f.due_at <= f.at, "fired before due by the database's clock"
        assert start <= f.at <= end, f"stamped {f.at} off the database's clock {start}..{end}"
    settled = await rows(
        engine,
        "SELECT status, count(*) FROM deadlines WHERE deadline_id = ANY(CAST(:d AS uuid[])) GROUP BY status",
        d=[f.d for f in fired],
    )
    assert [tuple(s) for s in settled] == [("fired", len(fired))]


async def test_a_resolved_case_nobody_verifies_hands_the_check_up_once(engine: AsyncEngine) -> None:
    quick = desk(engine, 0, ack_s=600, resolve_s=3600, verify_s=1)
    case_id = await register(quick)
    (order_id, dept) = (
        await rows(engine, "SELECT order_id::text, department FROM orders WHERE case_id = :c", c=case_id)
    )[0]
    resolve = Command(
        Action.RESOLVE,
        actor=Actor(kind="department", id=dept, display=dept),
        department=dept,
        order_id=order_id,
        evidence=1,
    )
    assert (await quick.act(case_id, resolve)).applied
    await wait_until_due(engine, [case_id], "verify")
    watches = [
        DeadlineWatch(engine, desk(engine, s, ack_s=600, resolve_s=3600, verify_s=1)) for s in (-HOURS, HOURS)
    ]
    await asyncio.gather(*(w.fire_due() for w in watches))
    fired = await rows(
        engine,
        "SELECT t.action, t.from_state, t.to_state, t.reason FROM transitions t JOIN deadlines d USING (deadline_id) "
        "WHERE t.case_id = :c AND d.kind = 'verify'",
        c=case_id,
    )
    assert [tuple(f) for f in fired] == [
        ("escalate_verification", "resolved", "resolved", "sla.verify_overdue")
    ]
    (state, tier) = (await rows(engine, "SELECT state, tier FROM cases WHERE case_id = :c", c=case_id))[0]
    assert (state, tier) == ("resolved", "district")
    running = await rows(
        engine, "SELECT kind FROM deadlines WHERE case_id = :c AND status = 'running'", c=case_id
    )
    assert [r.kind for r in running] == ["verify"], "the district's verification deadline runs"


async def test_a_pass_reads_only_what_is_due_however_many_deadlines_run(engine: AsyncEngine) -> None:
    """Every open case has deadlines running; the watch polls twice a second on every instance. Its
    read must find the due ones through the index on due times, not walk every running deadline (a
    volatile clock in the condition makes PostgreSQL filter row by row: ~13 ms a poll at 100,000)."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO deadlines (deadline_id, case_id, kind, due_at) "
                "SELECT gen_random_uuid(), gen_random_uuid(), 'acknowledge', "
                "clock_timestamp() + make_interval(hours => 1 + i) FROM generate_series(1, 20000) i"
            )
        )
        await conn.execute(text("ANALYZE deadlines"))
        plan = await conn.scalar(text("EXPLAIN (ANALYZE, FORMAT JSON) " + DUE), {"n": 100})
    nodes = list(plan_nodes(plan))
    filtered = sum(int(n.get("Rows Removed by Filter", 0)) for n in nodes)
    assert filtered == 0, f"the watch's read filtered {filtered} rows that were not due: {nodes[-1]}"
    assert any("due_at" in n.get("Index Cond", "") for n in nodes), nodes
