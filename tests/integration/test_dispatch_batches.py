"""The desk on PostgreSQL (dispatch.pg): a consumer batch with several messages of one case, applied in
one transaction, leaves exactly the rows of one transaction per message, in every table of the
dispatch schema (the outbox's ids and order included). The scenario is the unit test's
(tests/unit/dispatch/batch_scenario.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import text

from dispatch.bootstrap import MIGRATIONS
from dispatch.pg import PgRepository, PgUnit
from onegrid.db import make_engine, migrate

UNIT = Path(__file__).resolve().parents[1] / "unit" / "dispatch"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"dispatch_batches_{name}", UNIT / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


sample, scenario_ = load("sample"), load("batch_scenario")

TABLES = {
    "cases": "case_id",
    "transitions": "event_id",
    "deadlines": "deadline_id",
    "routing_decisions": "event_id",
    "routing_rule_sets": "rule_set",
    "orders": "order_id",
    "deliveries": "delivery_id",
    "processed": "source, caller, message_id",
    "outbox": "id",
}


SERVER_TIMES = {("outbox", "created_at"), ("routing_rule_sets", "stored_at")}


class FixedClockRepository(PgRepository):
    """PostgreSQL, its clock read as one fixed instant (dispatch.pg reads clock_timestamp()), so the
    two runs can be compared row for row, times included."""

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[PgUnit]:
        async with super().unit() as u:

            async def fixed() -> datetime:
                return scenario_.T0 + timedelta(seconds=1)

            u.now = fixed  # type: ignore[method-assign]
            yield u


async def dump(engine: Any) -> dict[str, list[dict[str, Any]]]:
    out = {}
    async with engine.connect() as conn:
        for table, key in TABLES.items():
            rows = (await conn.execute(text(f"SELECT * FROM {table} ORDER BY {key}"))).mappings().all()
            # the outbox row's insertion time and a rule set's are the server's clock, not the desk's
            out[table] = [{k: v for k, v in r.items() if (table, k) not in SERVER_TIMES} for r in rows]
    return out


async def test_a_batch_writes_the_rows_of_one_transaction_per_message(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    scenario = scenario_.Scenario(sample)
    engines = []
    try:
        dumps, answers = [], []
        orders = None
        for batched in (False, True):
            schema = f"dispatch_batch_{uuid.uuid4().hex[:8]}"
            await migrate(url, schema, MIGRATIONS)
            engine = make_engine(url, schema)
            engines.append((engine, schema))
            monkeypatch.setattr(uuid, "uuid4", scenario_.seeded_uuid4(7))
            desk = scenario_.desk(FixedClockRepository(engine), sample)
            results, orders = await scenario_.run(desk, scenario, batched=batched, orders=orders)
            monkeypatch.undo()
            answers.append(scenario_.outcomes(results))
            dumps.append(await dump(engine))
        one_by_one, batch = dumps
        assert answers[0] == answers[1]
        assert answers[0].count("applied") == 8 and "refused:feedback.unknown_order" in answers[0]
        for table in TABLES:
            assert batch[table] == one_by_one[table], table
        assert {r["state"] for r in batch["cases"]} == {"resolved", "cancelled", "returned"}
        assert len(batch["deliveries"]) == 2 and len(batch["processed"]) == 8
        assert {r["status"] for r in batch["deadlines"]} >= {"running", "cleared"}
        assert len(batch["outbox"]) == len(batch["transitions"]) + len(batch["orders"])
    finally:
        for engine, schema in engines:
            async with engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await engine.dispose()


async def test_units_claiming_the_same_keys_in_opposite_orders_do_not_deadlock(database_url: str) -> None:
    """Two units (two lanes of one batch, or two instances) claim the same message ids at once, given
    in opposite orders (a sender that reused ids across cases): one waits for the other and finds
    them claimed; neither is made a deadlock victim."""
    import asyncio

    from dispatch.store import MessageKey, Processed

    url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    schema = f"dispatch_claims_{uuid.uuid4().hex[:8]}"
    await migrate(url, schema, MIGRATIONS)
    engine = make_engine(url, schema)
    repo = PgRepository(engine)
    keys = [
        Processed(MessageKey("feedback", "dept", f"fb-{i:05}"), str(uuid.uuid4()), "applied", scenario_.T0)
        for i in range(3000)
    ]
    both_open = asyncio.Barrier(2)

    async def claim(order: list[Processed]) -> int:
        async with repo.unit() as u:
            await u.now()  # the transaction is open
            await both_open.wait()
            return len(await u.claim(order))

    try:
        got = await asyncio.wait_for(
            asyncio.gather(claim(keys), claim(keys[::-1]), return_exceptions=True), 60
        )
        assert not any(isinstance(g, BaseException) for g in got), got
        assert sorted(got) == [0, len(keys)]  # type: ignore[type-var]
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()


async def test_the_batch_reads_are_planned_for_their_ids(database_url: str) -> None:
    """A unit reads its message ids with one statement, `= ANY($1)`, prepared once per connection.
    After five executions PostgreSQL may plan such a statement once for all (a generic plan), costed
    on the table as it is then, and keep that plan while the table grows (rows added do not
    invalidate it; only an ANALYZE does). On a table of a few hundred to a few thousand rows that
    plan is a sequential scan whose filter compares every row with every id of the batch, unhashed
    (the ids are not known when it is made): on the desk, 40 µs a case at 6,000 rows, growing with the
    table, where a plan made for the ids costs 1.7. So the services' connections plan every
    execution for its values (`onegrid.db.SERVER_SETTINGS`): none of them is generic."""
    from dispatch.pg import PROCESSED
    from dispatch.store import MessageKey, Processed

    url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    schema = f"dispatch_plans_{uuid.uuid4().hex[:8]}"
    await migrate(url, schema, MIGRATIONS)
    engine = make_engine(url, schema, pool_size=1)
    repo = PgRepository(engine)
    try:
        for batch in range(12):  # the table grows from 0 to 1,200 rows, as under the desk
            async with repo.unit() as u:
                assert await u.processed([f"m-{batch}-{i}" for i in range(500)]) == []
                claimed = [
                    Processed(
                        MessageKey("case", "intake", f"m-{batch}-{i}"),
                        str(uuid.uuid4()),
                        "applied",
                        scenario_.T0,
                    )
                    for i in range(100)
                ]
                assert len(await u.claim(claimed)) == 100
        async with repo.unit() as u:
            rows = await u._conn.fetch(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1",
                PROCESSED,
            )
        assert [tuple(r) for r in rows] == [(0, 12)]
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()


async def test_lanes_storing_a_new_rule_set_at_once_store_it_once(database_url: str) -> None:
    """The first batch under a version of the rules: its lanes, running at once, both meet a rule set
    not stored yet and store it (one waits on the other's insert, then finds it there). Every decision
    names it; `routing_decisions_whole` shows each one with the rules it looked at, as a decision
    stored them before the sets were kept apart."""
    from dispatch.desk import LANE_MIN

    url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    schema = f"dispatch_rule_sets_{uuid.uuid4().hex[:8]}"
    await migrate(url, schema, MIGRATIONS)
    engine = make_engine(url, schema)
    try:
        desk = scenario_.desk(PgRepository(engine), sample)
        n = 2 * LANE_MIN  # enough for two lanes
        batch = [
            scenario_.Scenario.case(
                sample.case_event(category="city.street_vending", case_id=scenario_._id(5000 + i))
                | {"event_id": scenario_._id(6000 + i)}
            )
            for i in range(n)
        ]
        results = await desk.apply(batch)
        assert [r.outcome for r in results] == ["applied"] * n
        expected = [[r["code"], int(r.get("revision", 0))] for r in desk.lifecycle().directory._rules()]
        async with engine.connect() as conn:
            sets = (await conn.execute(text("SELECT rule_set, rules FROM routing_rule_sets"))).all()
            whole = (
                await conn.execute(text("SELECT case_id, decision, rule_set FROM routing_decisions_whole"))
            ).all()
        assert [r.rules for r in sets] == [expected]
        assert len(whole) == n
        assert all(d.decision["considered_rules"] == expected for d in whole)
        assert {d.decision["rule_set"] for d in whole} == {sets[0].rule_set}
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()


async def test_decisions_from_before_the_rule_sets_and_after_read_alike(database_url: str) -> None:
    """Migration 0007 keeps a decision written before it as it is (its list inside `decision`);
    `routing_decisions_whole` shows old and new decisions with the rules they looked at, and going
    back to 0006 puts the list into every new decision again."""
    import asyncio

    from alembic import command
    from alembic.config import Config

    url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    schema = f"dispatch_0007_{uuid.uuid4().hex[:8]}"
    rules = [["r-vending", 3], ["r-default", 1]]
    old = {"tier": "street", "rule_code": "r-vending", "considered_rules": rules}
    new = {"tier": "street", "rule_code": "r-vending", "rule_set": "abc"}
    insert = text(
        "INSERT INTO routing_decisions (event_id, case_id, decision, decided_at) "
        "VALUES (:e, :c, CAST(:d AS jsonb), now())"
    )
    old_id, new_id = uuid.uuid4(), uuid.uuid4()
    await migrate(url, schema, MIGRATIONS, to="0006")
    engine = make_engine(url, schema)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert, {"e": old_id, "c": uuid.uuid4(), "d": json.dumps(old)})
        await migrate(url, schema, MIGRATIONS)
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO routing_rule_sets (rule_set, rules) VALUES ('abc', CAST(:r AS jsonb))"),
                {"r": json.dumps(rules)},
            )
            await conn.execute(insert, {"e": new_id, "c": uuid.uuid4(), "d": json.dumps(new)})
            await conn.execute(
                text("UPDATE routing_decisions SET rule_set = 'abc' WHERE event_id = :e"), {"e": new_id}
            )
            whole = dict(
                (await conn.execute(text("SELECT event_id, decision FROM routing_decisions_whole"))).all()
            )
        assert whole == {old_id: old, new_id: new | {"considered_rules": rules}}

        def downgrade() -> None:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["url"] = url
            cfg.attributes["schema"] = schema
            command.downgrade(cfg, "0006")

        await engine.dispose()
        await asyncio.to_thread(downgrade)
        async with engine.begin() as conn:
            back = dict((await conn.execute(text("SELECT event_id, decision FROM routing_decisions"))).all())
        assert back == {old_id: old, new_id: new | {"considered_rules": rules}}
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()
