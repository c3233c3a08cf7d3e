"""Dispatch's desk on its own: case events (made by the real intake core from real feed records) go
through `Inbox.handle` exactly as the dispatch consumer loop calls it, one batch of 500 at a time,
against a migrated scratch schema; every case is registered, routed by the seed's 85 rules and its
orders written to the outbox, one database transaction per batch (the desk's unit of work)."""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from bench.feeds import FeedStream, Legacy, seeded_view
from onegrid import heap
from onegrid.db import make_engine, migrate
from onegrid.settings import ServiceSettings


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """What the inbox reads from cases.v1 (the consumer-record shape)."""

    topic: str
    partition: int
    offset: int
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: int = 0


def case_events(n: int, feeds: tuple[str, ...] = ("party", "safety", "open311", "cap")) -> list[bytes]:
    """`n` encoded case.reported events from the intake core (no Kafka), feeds taken in turn."""
    from onegrid_contracts.case_event import encode_case_event

    return [encode_case_event(ev) for ev in _reported(n, feeds)]


def case_records(n: int, feeds: tuple[str, ...] = ("party", "safety", "open311", "cap")) -> list[Legacy]:
    """`n` case.reported records as intake writes them on cases.v1: keyed by case id, with their
    CloudEvents headers."""
    from intake.pipeline import event_record

    out = [event_record(ev, None) for ev in _reported(n, feeds)]
    return [Legacy(r.key or b"", r.value or b"", tuple(r.headers)) for r in out]


def _reported(n: int, feeds: tuple[str, ...]) -> list[Any]:
    from intake.bootstrap import intake_parts
    from intake.domain.normalize import Provenance
    from intake.domain.process import Inbound
    from onegrid.envelope import header_dict
    from onegrid.settings import KafkaSettings

    parts = intake_parts(KafkaSettings(), client_id="bench-desk")
    parts.view.records = seeded_view().records
    parts.view.spatial_version += 1
    intake = parts.pipeline.intake
    streams = [FeedStream(f, seed=11) for f in feeds]
    out: list[Any] = []
    while len(out) < n:
        for stream in streams:
            batch = [
                Inbound(
                    stream.feed, r.value, Provenance("bench", 0, i, datetime.now(UTC)), header_dict(r.headers)
                )
                for i, r in enumerate(stream.take(100))
            ]
            outcome = intake.process(batch)
            outcome.apply()
            out += [ev for o in outcome.outcomes for ev in o.events if ev.event_type == "case.reported"]
    return out[:n]


@contextmanager
def settled_heap() -> Iterator[None]:
    """The heap as a service has it after start-up (`onegrid.heap.settle`: what exists is frozen, young
    collections rarer), undone afterwards so the bench's later sections run as before. Without it the
    desk's young collections traverse everything the bench process built before this section."""
    threshold = gc.get_threshold()
    heap.settle()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


async def bench_desk(database_url: str, n: int, batch: int = 500) -> dict[str, Any]:
    """Cases per second through the desk, and the CPU this process spent per case (PostgreSQL's not
    included). The scratch schema is dropped afterwards."""
    from dispatch.desk import Desk
    from dispatch.domain.clock import SystemClock
    from dispatch.domain.lifecycle import Lifecycle, Policy
    from dispatch.domain.routing import Directory
    from dispatch.handlers import Inbox
    from dispatch.pg import PgRepository
    from dispatch.settings import Settings
    from dispatch.store import Outlets

    url = ServiceSettings(environment="development", database_url=database_url).database_url
    schema = f"bench_dispatch_{uuid.uuid4().hex[:8]}"
    migrations = __import__("dispatch.bootstrap", fromlist=["MIGRATIONS"]).MIGRATIONS
    await migrate(url, schema, migrations)
    engine = make_engine(url, schema)
    view = seeded_view()
    defaults = Settings.model_fields
    policy = Policy(
        reopen_window_s=defaults["reopen_window_days"].default * 86400,
        arbitration_s=defaults["arbitration_s"].default,
    )

    async def no_topic(_name: str) -> None:  # orders stay in the outbox: no relay in this bench
        return None

    desk = Desk(
        repository=PgRepository(engine),
        lifecycle=lambda: Lifecycle(Directory(view.records, command_suffix="-command"), policy),
        clock=SystemClock(),
        outlets=Outlets(lifecycle_topic="bench.lifecycle", orders_topic="bench.orders.{department}"),
        ensure_topic=no_topic,
    )
    inbox = Inbox(desk, cases_topic="bench.cases", feedback_topic="bench.feedback")
    records = [CaseRecord("bench.cases", 0, i, v) for i, v in enumerate(case_events(n))]
    try:
        await inbox.handle(records[:20])  # connections and caches warm; not counted
        measured = records[20:]
        with settled_heap():  # as the service runs it once started (onegrid.service)
            started, cpu = time.perf_counter(), time.process_time()
            for i in range(0, len(measured), batch):
                await inbox.handle(measured[i : i + batch])
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        async with engine.connect() as conn:
            cases = await conn.scalar(text("SELECT count(*) FROM cases"))
            orders = await conn.scalar(text("SELECT count(*) FROM orders"))
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()
    return {
        "cases": len(measured),
        "per_s": len(measured) / elapsed,
        "cpu_us_per_case": cpu / len(measured) * 1e6,
        "registered": int(cases or 0),
        "orders": int(orders or 0),
    }
