"""Intake's start-up read of `cases.v1`: time to catch up and case-book size, with N case events
older than the taken-in horizon and M recent ones, read whole (no horizon) and from the horizon on.

    .venv/bin/python -m bench.intake_startup --old 200000 --recent 20000

Starts a broker of its own (or uses ONEGRID_KAFKA_BOOTSTRAP_SERVERS when set) and stops it after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from devstack.kafka import KafkaBroker
from devstack.paths import free_port
from intake.domain.correlation import CaseBook
from intake.domain.crosswalk import Crosswalk
from intake.domain.process import Intake
from intake.geography import ViewGeography
from intake.pipeline import IntakePipeline, IntakeTopics
from onegrid.kafka.admin import ensure_topics
from onegrid.kafka.table import GlobalTable
from onegrid.settings import KafkaSettings
from onegrid.topics import TopicSpec
from registry_client import RegistryView

HORIZON = timedelta(days=30)
SCHEMA = Path(__file__).resolve().parents[3] / "contracts" / "schemas" / "case-event.v1.json"


def template() -> dict[str, Any]:
    """The contract's own example of a case event."""
    examples: list[dict[str, Any]] = json.loads(SCHEMA.read_text())["examples"]
    return next(e for e in examples if e["event_type"] == "case.reported")


def event(base: dict[str, Any], i: int, at: datetime) -> bytes:
    ev = json.loads(json.dumps(base))
    ev["event_id"] = str(uuid.uuid4())
    ev["case_id"] = str(uuid.uuid4())
    ev["source"]["source_id"] = f"S{i:09d}"
    ev["times"]["received_at"] = at.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return json.dumps(ev).encode()


async def fill(kafka: KafkaSettings, topic: str, old: int, recent: int) -> None:
    base = template()
    now = datetime.now(UTC)
    producer = AIOKafkaProducer(linger_ms=50, max_batch_size=1 << 20, **kafka.client_kwargs())
    await producer.start()
    try:
        for i in range(old + recent):
            # The old ones spread over the year before the horizon, in order of time.
            at = now - HORIZON - timedelta(days=335) * (1 - i / old) if i < old else now
            await producer.send(
                topic, event(base, i, at), key=str(i).encode(), timestamp_ms=int(at.timestamp() * 1000)
            )
        await producer.flush()
    finally:
        await producer.stop()


async def start_up(kafka: KafkaSettings, topic: str, horizon: timedelta | None) -> dict[str, float]:
    """What intake does with `cases.v1` at start: its table caught up into a fresh case book."""
    intake = Intake(
        crosswalk=Crosswalk.load(),
        geography=ViewGeography(RegistryView()),
        book=CaseBook(keep_sources=horizon),
    )
    pipeline = IntakePipeline(intake, topics=IntakeTopics(cases=topic))
    since = None if horizon is None else (lambda: datetime.now(UTC) - horizon)
    table = GlobalTable(
        kafka, topic, pipeline.observe_cases, client_id=f"bench-{uuid.uuid4().hex[:6]}", since=since
    )
    t0 = time.perf_counter()
    await table.catch_up(timeout_s=1800)
    elapsed = time.perf_counter() - t0
    await table.close()
    return {"seconds": round(elapsed, 2), "records_read": table.applied, "book_keys": intake.book.size()}


async def main_async(old: int, recent: int) -> None:
    bootstrap = os.environ.get("ONEGRID_KAFKA_BOOTSTRAP_SERVERS")
    broker = None
    with tempfile.TemporaryDirectory() as tmp:
        if not bootstrap:
            broker = KafkaBroker(Path(tmp), port=free_port(), controller_port=free_port())
            broker.start()
            await broker.wait_ready()
            bootstrap = broker.bootstrap
        try:
            kafka = KafkaSettings(bootstrap_servers=bootstrap)
            topic = f"bench.cases.{uuid.uuid4().hex[:8]}"
            await ensure_topics(kafka, [TopicSpec(topic, partitions=3)])
            await fill(kafka, topic, old, recent)
            whole = await start_up(kafka, topic, None)
            bounded = await start_up(kafka, topic, HORIZON)
            print(json.dumps({"old": old, "recent": recent, "whole": whole, "horizon_30d": bounded}))
        finally:
            if broker is not None:
                broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.intake_startup", description=__doc__)
    parser.add_argument("--old", type=int, default=200_000, help="case events older than the horizon")
    parser.add_argument("--recent", type=int, default=20_000, help="case events within the horizon")
    args = parser.parse_args()
    asyncio.run(main_async(args.old, args.recent))


if __name__ == "__main__":
    main()
