"""Evaluation's metric rows kept per batch on the real PostgreSQL: each batch replaces its changed
cases' contributions (`metric_member`) and recomputes the rows they count in from those rows'
members, never from other cases' facts; the rows equal `aggregate_all` over every case's facts, batch
after batch, on generated streams (cases moving between units and periods, cancelled, merged,
reopened, charged to several departments); a database upgraded from revision 0002 gets the members
of the cases it already held."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import text
from support import scripted_stream as script
from support.lifecycles import batches

from evaluation.domain.case_facts import CaseFacts, Policy, encode_facts, fold
from evaluation.domain.metrics import MetricKey, MetricRow, aggregate_all, keys_of
from evaluation.domain.scope import CITY
from evaluation.rebuild import MIGRATIONS
from evaluation.store import ReadModels, Received
from onegrid.db import make_engine, migrate
from onegrid_contracts.lifecycle import LifecycleEvent, decode_lifecycle

POLICY = Policy()


def asyncpg_url(url: str) -> str:
    return "postgresql+asyncpg://" + url.split("://", 1)[1]


def received(bodies: list[dict[str, Any]], offset: int = 0) -> list[Received]:
    out = []
    for i, b in enumerate(bodies):
        body = json.dumps(b).encode()
        out.append(Received(decode_lifecycle(body), body, "case.lifecycle.v1", 0, offset + i))
    return out


def expected(events: dict[str, list[LifecycleEvent]]) -> dict[MetricKey, MetricRow]:
    return aggregate_all([fold(evs, POLICY) for evs in events.values()], POLICY.definition())


async def kept_rows(models: ReadModels) -> dict[MetricKey, MetricRow]:
    return {
        MetricKey(r.dimension, r.value, r.granularity, r.period_start): r
        for r in await models.metrics(scope=CITY, limit=100_000)
    }


@pytest.fixture(scope="module")
def schema(database_url: str) -> Iterator[str]:
    name = f"evaluation_i_{uuid.uuid4().hex[:10]}"
    asyncio.run(migrate(asyncpg_url(database_url), name, MIGRATIONS))
    yield name


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(stream=batches())
def test_rows_kept_batch_after_batch_equal_aggregate_all_over_every_fact(
    database_url: str, schema: str, stream: list[list[dict[str, Any]]]
) -> None:
    async def run() -> None:
        engine = make_engine(asyncpg_url(database_url), schema, pool_size=1)
        models = ReadModels(engine, POLICY)
        try:
            await models.truncate()
            events: dict[str, list[LifecycleEvent]] = {}
            offset = 0
            for batch in stream:
                await models.apply(received(batch, offset))
                offset += len(batch)
                for r in received(batch):
                    events.setdefault(str(r.event.case_id), []).append(r.event)
                assert await kept_rows(models) == expected(events)
            again = await models.dump()
            await models.apply(received([b for batch in stream for b in batch]))
            assert await models.dump() == again  # the whole stream again changes nothing
        finally:
            await engine.dispose()

    asyncio.run(run())


async def test_a_batch_recomputes_its_rows_without_reading_the_facts_of_other_cases(
    database_url: str, schema: str
) -> None:
    engine = make_engine(asyncpg_url(database_url), schema, pool_size=1)
    models = ReadModels(engine, POLICY)
    try:
        await models.truncate()
        await models.apply(received(script.stream()))
        cases = script.cases()
        # Case A's stored facts say something else now; the next batch does not change case A, so
        # the rows it recomputes (the month of every case among them) must not read them.
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE case_fact SET facts = jsonb_set(facts, '{state}', '\"cancelled\"') "
                    "WHERE case_id = CAST(:c AS uuid)"
                ),
                {"c": cases["A"].case_id},
            )
        h = cases["H"]
        h.resolve(script.t(5, 3))
        applied = await models.apply(received([h.events[-1]], offset=1000))
        assert applied.cases == 1 and applied.rows > 0
        events: dict[str, list[LifecycleEvent]] = {}
        for s in cases.values():
            events[s.case_id] = [decode_lifecycle(json.dumps(b).encode()) for b in s.events]
        assert await kept_rows(models) == expected(events)
    finally:
        await engine.dispose()


async def test_an_upgraded_database_gets_the_members_of_the_cases_it_held(database_url: str) -> None:
    schema = f"evaluation_u_{uuid.uuid4().hex[:10]}"
    url = asyncpg_url(database_url)
    await migrate(url, schema, MIGRATIONS, to="0002")
    cases = script.cases()
    facts: list[CaseFacts] = [
        fold([decode_lifecycle(json.dumps(b).encode()) for b in s.events], POLICY) for s in cases.values()
    ]
    engine = make_engine(url, schema, pool_size=1)
    try:
        async with engine.begin() as conn:
            # What revision 0002 held: the events and the facts folded from them.
            for r in received([b for s in cases.values() for b in s.events]):
                await conn.execute(
                    text(
                        'INSERT INTO lifecycle_event (case_id, seq, event_id, body, topic, partition, "offset") '
                        "VALUES (CAST(:c AS uuid), :s, CAST(:e AS uuid), CAST(:b AS jsonb), :t, 0, :o)"
                    ),
                    {
                        "c": str(r.event.case_id),
                        "s": r.event.seq,
                        "e": str(r.event.event_id),
                        "b": r.body.decode(),
                        "t": r.topic,
                        "o": r.offset,
                    },
                )
            for f in facts:
                await conn.execute(
                    text(
                        "INSERT INTO case_fact (case_id, registered_at, state, street, department, facts) "
                        "VALUES (CAST(:c AS uuid), :r, :s, :st, :d, CAST(:f AS jsonb))"
                    ),
                    {
                        "c": f.case_id,
                        "r": f.registered_at,
                        "s": f.state,
                        "st": f.street,
                        "d": f.department,
                        "f": encode_facts(f).decode(),
                    },
                )
        await migrate(url, schema, MIGRATIONS)
        models = ReadModels(engine, POLICY)
        h = cases["H"]
        h.resolve(script.t(5, 3))
        await models.apply(received([h.events[-1]], offset=1000))
        events = {
            s.case_id: [decode_lifecycle(json.dumps(b).encode()) for b in s.events] for s in cases.values()
        }
        want = expected(events)
        got = await kept_rows(models)
        h_facts = fold(events[h.case_id], POLICY)
        assert set(got) == keys_of(h_facts)
        assert got == {k: want[k] for k in keys_of(h_facts)}
    finally:
        await engine.dispose()
