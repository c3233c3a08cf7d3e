"""The trail de-duplicates by source position, keyed by the Kafka topic's id: a replay that keeps its
CloudEvents id is a new message on the wire and reaches the trail; a topic deleted and created again
under the same name starts a new key; a partition whose position goes back under the same id (its log
rewritten) raises the alarm and loses nothing. Real PostgreSQL and the real broker (topic ids)."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import TopicAlreadyExistsError
from support.audit_trail import FakeRecord, case_event, fresh_schema

from audit.trail_writer import TrailWriter
from onegrid.kafka.admin import ensure_topics
from onegrid.kafka.topic_ids import TopicIds
from onegrid.settings import KafkaSettings
from onegrid.topics import TopicSpec

pytestmark = pytest.mark.asyncio(loop_scope="session")


def raw(topic: str, offset: int, text: str = "first") -> FakeRecord:
    return FakeRecord(topic, 0, offset, f"##0101QN={offset:017d};CP=&&{text}&&".encode())


async def test_a_replay_that_keeps_its_event_id_reaches_the_trail(database_url: str) -> None:
    db = await fresh_schema(database_url)
    try:
        writer = TrailWriter(db)
        event = case_event("cases.v1", 0, "case-1", event_id="evt-1")
        assert (await writer.append([event])).appended == 1
        # The console replays it: same body, same CloudEvents id, a new offset.
        replayed = FakeRecord("cases.v1", 0, 7, event.value, event.key, event.headers)
        result = await writer.append([replayed])
        assert (result.appended, result.duplicates) == (1, 0)
        # Delivered again after a crash (the same position): recorded once.
        again = await writer.append([event, replayed])
        assert (again.appended, again.duplicates) == (0, 2)
    finally:
        await db.close()


async def recreate(kafka: KafkaSettings, name: str) -> None:
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        await admin.delete_topics([name])
    finally:
        await admin.close()
    while True:  # deletion completes in the background
        try:
            await ensure_topics(kafka, [TopicSpec(name, partitions=1)])
            ids = await TopicIds(kafka)([name], fresh=True)
            if name in ids:
                return
        except TopicAlreadyExistsError:
            pass
        await asyncio.sleep(0.5)


async def test_a_recreated_topic_is_a_new_key_and_a_rewritten_partition_raises_the_alarm(
    database_url: str, kafka_settings: KafkaSettings, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"t.legacy.party.{uuid.uuid4().hex[:10]}"
    await ensure_topics(kafka_settings, [TopicSpec(name, partitions=1)])
    db = await fresh_schema(database_url)
    try:
        lookup = TopicIds(kafka_settings)
        writer = TrailWriter(db, topic_ids=lookup)
        first_id = (await lookup([name]))[name]
        assert (await writer.append([raw(name, o) for o in range(5)])).appended == 5
        assert (await writer.append([raw(name, o) for o in range(3, 6)])).appended == 1  # redelivery

        await recreate(kafka_settings, name)
        second_id = (await TopicIds(kafka_settings)([name]))[name]
        assert second_id != first_id
        again = await writer.append([raw(name, o, "second life") for o in range(3)])
        assert (again.appended, again.duplicates) == (3, 0), (
            "the new topic's offsets 0-2 were taken as recorded"
        )
        assert writer.regressions == 0

        # Under the same id, offsets 1-2 now hold other records (a log truncated and written again).
        with caplog.at_level(logging.WARNING, logger="audit.trail_writer"):
            rewritten = await writer.append([raw(name, 1, "rewritten"), raw(name, 2, "second life")])
        assert (rewritten.appended, rewritten.duplicates) == (1, 1), "the rewritten record is kept"
        assert writer.regressions == 1
        assert any("position went back" in r.getMessage() for r in caplog.records)
        assert (await writer.append([raw(name, 1, "rewritten")])).appended == 0  # kept once
        async with db.acquire() as conn:
            keys = await conn.fetch(
                "SELECT topic_id, next_offset FROM tap_position WHERE topic = $1 ORDER BY next_offset", name
            )
            ids = await conn.fetch(
                "SELECT topic_id, count(*) AS n FROM trail WHERE topic = $1 GROUP BY topic_id ORDER BY n",
                name,
            )
        assert [(k["topic_id"], k["next_offset"]) for k in keys] == [(second_id, 3), (first_id, 6)]
        assert [(r["topic_id"], r["n"]) for r in ids] == [(second_id, 4), (first_id, 6)]
    finally:
        await db.close()
