"""A report that comes while the registry is still arriving (seeded after intake started: the
divisions applied, the grids committed and not yet applied) waits for the grids, on the real broker:
placed on the view as it stood, it was placed in its community and never in its grid, for good, and
the grid's worker never saw the case."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer

from intake.bootstrap import intake_parts
from intake.pipeline import IntakeTopics
from onegrid.kafka.admin import ensure_topics
from onegrid.kafka.records import Record
from onegrid.settings import KafkaSettings
from onegrid.topics import TopicSpec

from .conftest import read_all
from .test_intake_taken_in_horizon import loop_for, processed_to

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.records import party_diary

HERE = (32.3942, 119.4129)  # in grid 321003103210004 of the reference seed


async def test_a_report_waits_for_the_registry_committed_before_it(kafka_settings: KafkaSettings) -> None:
    from grid_registry.domain.seed import seed_records

    ns = uuid.uuid4().hex[:8]
    names = ("party", "cases", "state", "registry", "dlq", "quarantine")
    n = {k: f"t.behind.{k}.{ns}" for k in names}
    await ensure_topics(
        kafka_settings,
        [
            TopicSpec(n["party"], partitions=1),
            TopicSpec(n["cases"], partitions=1),
            TopicSpec(n["state"], partitions=1, compacted=True),
            TopicSpec(n["registry"], partitions=1, compacted=True),
            TopicSpec(n["dlq"], partitions=1, keyed=False),
            TopicSpec(n["quarantine"], partitions=1, keyed=False),
        ],
    )
    records = seed_records()
    divisions = [r for r in records if r["kind"] == "division"]
    rest = [r for r in records if r["kind"] != "division"]

    async def publish(producer: AIOKafkaProducer, batch: list[dict]) -> None:
        async with producer.transaction():  # as the registry's outbox relay publishes: committed at once
            for rec in batch:
                await producer.send(
                    n["registry"], json.dumps(rec).encode(), key=f"{rec['kind']}:{rec['code']}".encode()
                )

    registry = AIOKafkaProducer(transactional_id=f"registry-{ns}", **kafka_settings.client_kwargs())
    await registry.start()
    await publish(registry, divisions)
    parts = intake_parts(
        kafka_settings,
        client_id=f"behind-{ns}",
        topics=IntakeTopics(feeds={n["party"]: "party"}, cases=n["cases"], state=n["state"]),
        registry_topic=n["registry"],
    )
    await parts.catch_up()
    assert parts.view.all("division") and not parts.view.all("grid")

    # The registry's table applies the grids slowly (a batch while the spatial index is rebuilt).
    table = parts.tables[0]
    applying = asyncio.Event()
    release = asyncio.Event()
    apply = table._apply

    async def slow(batch: list[Record]) -> object:
        applying.set()
        await release.wait()
        return await apply(batch)

    table._apply = slow
    follow = asyncio.create_task(parts.follow())
    await publish(registry, rest)
    await asyncio.wait_for(applying.wait(), 60)

    source_id = "MQRJ9000000000001"
    feeds = AIOKafkaProducer(**kafka_settings.client_kwargs())
    await feeds.start()
    await feeds.send_and_wait(n["party"], party_diary(source_id, wgs=HERE), key=source_id.encode())
    group = f"behind.{ns}"
    loop = loop_for(kafka_settings, parts, group, n)
    task = asyncio.create_task(loop.run())
    try:
        await asyncio.sleep(3)  # the loop has the report meanwhile
        assert await read_all(kafka_settings, n["cases"], timeout_s=1) == [], "decided on a view behind"
        release.set()
        await processed_to(kafka_settings, group, n["party"], 1)
    finally:
        loop.stop()
        await asyncio.wait_for(task, 30)
        await parts.stop()
        await asyncio.wait_for(follow, 30)
        await feeds.stop()
        await registry.stop()
    (case,) = [json.loads(r.value) for r in await read_all(kafka_settings, n["cases"], expect=1)]
    assert case["source"]["source_id"] == source_id
    assert case["division"]["grid"] == "321003103210004", case["division"]
    assert await read_all(kafka_settings, n["quarantine"], timeout_s=2) == []
    assert await read_all(kafka_settings, n["dlq"], timeout_s=2) == []
