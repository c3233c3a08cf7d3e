"""Intake's start-up reads `cases.v1` from the taken-in horizon on, on the real broker: case events
timestamped before it are not read and their source keys are not in the book; recent ones are, and
a re-sent recent source record is still recognised (no second case)."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.errors import GroupCoordinatorNotAvailableError

from intake.bootstrap import IntakeParts, intake_parts
from intake.pipeline import IntakeTopics
from onegrid.kafka.admin import consumer_lag, ensure_topics
from onegrid.kafka.loop import ConsumerLoop, LoopConfig, make_consumer
from onegrid.kafka.producer import partition_producers
from onegrid.settings import KafkaSettings
from onegrid.topics import TopicSpec

from .conftest import read_all

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.records import party_diary

HORIZON = timedelta(days=30)


def loop_for(kafka: KafkaSettings, parts: IntakeParts, group: str, n: dict[str, str]) -> ConsumerLoop:
    return ConsumerLoop(
        consumer=make_consumer(kafka, group_id=group, client_id=f"{group}-c"),
        handler=parts.pipeline.handle,
        transactional=partition_producers(kafka, group=group, client_id=f"{group}-t"),
        prepare=parts.handover,
        config=LoopConfig(
            group_id=group,
            topics=(n["party"],),
            service="intake",
            exactly_once=True,
            dlq_topic=n["dlq"],
            quarantine_topic=n["quarantine"],
        ),
    )


async def processed_to(kafka: KafkaSettings, group: str, topic: str, end: int) -> None:
    for _ in range(600):
        try:
            lags = await consumer_lag(kafka, [group])
        except GroupCoordinatorNotAvailableError:
            lags = []  # the group is not there yet
        if any(r.topic == topic and (r.committed or 0) >= end for r in lags):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{group} never processed {topic} to {end}")


async def run_until(
    kafka: KafkaSettings, parts: IntakeParts, group: str, n: dict[str, str], end: int
) -> None:
    loop = loop_for(kafka, parts, group, n)
    task = asyncio.create_task(loop.run())
    try:
        await processed_to(kafka, group, n["party"], end)
    finally:
        loop.stop()
        await asyncio.wait_for(task, 30)


def aged(template: dict, source_id: str, at: datetime) -> bytes:
    """A case event like `template` for another source record, taken in at `at`."""
    ev = json.loads(json.dumps(template))
    ev["event_id"] = str(uuid.uuid4())
    ev["case_id"] = str(uuid.uuid4())
    ev["source"]["source_id"] = source_id
    ev["times"]["received_at"] = at.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return json.dumps(ev).encode()


async def test_start_up_reads_cases_from_the_taken_in_horizon_on(kafka_settings: KafkaSettings) -> None:
    from grid_registry.domain.seed import seed_records

    ns = uuid.uuid4().hex[:8]
    names = ("party", "first_cases", "cases", "state", "registry", "dlq", "quarantine")
    n = {k: f"t.horizon.{k}.{ns}" for k in names}
    await ensure_topics(
        kafka_settings,
        [
            TopicSpec(n["party"], partitions=1),
            TopicSpec(n["first_cases"], partitions=1),
            TopicSpec(n["cases"], partitions=3),
            TopicSpec(n["state"], partitions=1, compacted=True),
            TopicSpec(n["registry"], partitions=1, compacted=True),
            TopicSpec(n["dlq"], partitions=1, keyed=False),
            TopicSpec(n["quarantine"], partitions=1, keyed=False),
        ],
    )
    producer = AIOKafkaProducer(linger_ms=20, **kafka_settings.client_kwargs())
    await producer.start()
    for rec in seed_records():
        await producer.send(
            n["registry"], json.dumps(rec).encode(), key=f"{rec['kind']}:{rec['code']}".encode()
        )
    recent_ids = [f"MQRJ7{i:012d}" for i in range(3)]
    diaries = {sid: party_diary(sid, wgs=(32.39 + 0.02 * i, 119.40)) for i, sid in enumerate(recent_ids)}
    for sid in recent_ids:
        await producer.send(n["party"], diaries[sid], key=sid.encode())
    await producer.flush()

    try:
        # Recent case events, taken in by intake now (on a scratch cases topic).
        first = intake_parts(
            kafka_settings,
            client_id=f"first-{ns}",
            topics=IntakeTopics(feeds={n["party"]: "party"}, cases=n["first_cases"], state=n["state"]),
            registry_topic=n["registry"],
        )
        await first.catch_up()
        await run_until(kafka_settings, first, f"first.{ns}", n, 3)
        await first.stop()
        recent = await read_all(kafka_settings, n["first_cases"], expect=3, timeout_s=30)
        assert sorted(json.loads(r.value)["source"]["source_id"] for r in recent) == recent_ids

        # cases.v1 of a service that ran for a while: events taken in 40 days ago on every partition,
        # then the recent ones on partitions 0 and 2; partition 1 has nothing that recent.
        template = json.loads(recent[0].value)
        old_at = datetime.now(UTC) - timedelta(days=40)
        old_ids = [f"MQRJ6{i:012d}" for i in range(30)]
        for i, sid in enumerate(old_ids):
            at = old_at + timedelta(minutes=i)
            await producer.send(
                n["cases"], aged(template, sid, at), partition=i % 3, timestamp_ms=int(at.timestamp() * 1000)
            )
        for i, r in enumerate(recent):
            await producer.send(
                n["cases"], r.value, key=r.key, headers=list(r.headers), partition=(0, 2)[i % 2]
            )
        await producer.flush()

        parts = intake_parts(
            kafka_settings,
            client_id=f"b-{ns}",
            topics=IntakeTopics(feeds={n["party"]: "party"}, cases=n["cases"], state=n["state"]),
            registry_topic=n["registry"],
            taken_in_horizon=HORIZON,
        )
        await parts.catch_up()
        book = parts.pipeline.intake.book
        assert not any(key in book.sources for key in (f"party:{sid}" for sid in old_ids))
        assert all(f"party:{sid}" in book.sources for sid in recent_ids)
        cases_table = parts.tables[1]
        assert cases_table.topic == n["cases"] and cases_table.applied == len(recent)
        assert cases_table.caught_up.is_set()

        # A re-send of a recent source record is no second case; a new record is one.
        await producer.send(n["party"], diaries[recent_ids[0]], key=recent_ids[0].encode())
        await producer.send(n["party"], party_diary("MQRJ8000000000001"), key=b"MQRJ8000000000001")
        await producer.flush()
        await run_until(kafka_settings, parts, f"b.{ns}", n, 5)
        await parts.stop()
    finally:
        await producer.stop()
    events = [json.loads(r.value) for r in await read_all(kafka_settings, n["cases"], timeout_s=3)]
    added = [ev["source"]["source_id"] for ev in events[len(old_ids) + len(recent) :]]
    by_source = [ev["source"]["source_id"] for ev in events]
    assert by_source.count(recent_ids[0]) == 1, added
    assert by_source.count("MQRJ8000000000001") == 1
    assert await read_all(kafka_settings, n["quarantine"], timeout_s=2) == []
    assert await read_all(kafka_settings, n["dlq"], timeout_s=2) == []
