"""Intake state handed over on a rebalance (issue 13.2), on the real broker: an HJ 212 partition
moves from one instance to another whose state follower lags behind; the new owner first catches up
the state and the cases the previous owner committed, so the open episode goes on (no second
`case.reported` for it). Also while another producer's transaction is open on the state topic (an
instance killed mid-batch, not fenced yet): the previous owner's commits behind it count too."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
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
from support.records import BEIJING, hj212_packet

T0 = datetime(2026, 11, 30, 6, 0, tzinfo=BEIJING)


def loop_for(kafka: KafkaSettings, parts: IntakeParts, group: str, n: dict[str, str]) -> ConsumerLoop:
    return ConsumerLoop(
        consumer=make_consumer(kafka, group_id=group, client_id=f"{group}-c-{uuid.uuid4().hex[:4]}"),
        handler=parts.pipeline.handle,
        transactional=partition_producers(kafka, group=group, client_id=f"{group}-t"),
        prepare=parts.handover,
        config=LoopConfig(
            group_id=group,
            topics=(n["hj212"],),
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


@pytest.mark.parametrize("open_elsewhere", [False, True], ids=["alone", "behind-an-open-transaction"])
async def test_the_new_owner_of_an_hj212_partition_continues_the_open_episode(
    kafka_settings: KafkaSettings, open_elsewhere: bool
) -> None:
    from grid_registry.domain.seed import seed_records

    ns = uuid.uuid4().hex[:8]
    n = {k: f"t.handover.{k}.{ns}" for k in ("hj212", "cases", "state", "registry", "dlq", "quarantine")}
    await ensure_topics(
        kafka_settings,
        [
            TopicSpec(n["hj212"], partitions=1),
            TopicSpec(n["cases"], partitions=1),
            TopicSpec(n["state"], partitions=1, compacted=True),
            TopicSpec(n["registry"], partitions=1, compacted=True),
            TopicSpec(n["dlq"], partitions=1, keyed=False),
            TopicSpec(n["quarantine"], partitions=1, keyed=False),
        ],
    )
    producer = AIOKafkaProducer(linger_ms=20, max_batch_size=512 * 1024, **kafka_settings.client_kwargs())
    await producer.start()
    records = seed_records()
    for rec in records:
        await producer.send(
            n["registry"], json.dumps(rec).encode(), key=f"{rec['kind']}:{rec['code']}".encode()
        )
    mn = sorted(r["code"] for r in records if r["kind"] == "station" and r.get("system_code") == "22")[0]

    async def packets(first: int, last: int) -> None:
        for i in range(first, last):
            value = 150.0 if i >= 5 else 30.0  # the episode opens at packet 5 and stays open
            await producer.send(
                n["hj212"], hj212_packet(mn, T0 + timedelta(minutes=i), {"a34004": value}), key=mn.encode()
            )
        await producer.flush()

    topics = IntakeTopics(feeds={n["hj212"]: "hj212"}, cases=n["cases"], state=n["state"])
    group = f"intake.{ns}"
    a = intake_parts(kafka_settings, client_id=f"a-{ns}", topics=topics, registry_topic=n["registry"])
    b = intake_parts(kafka_settings, client_id=f"b-{ns}", topics=topics, registry_topic=n["registry"])
    await producer.flush()
    await a.catch_up()
    await b.catch_up()  # B's view of the state is from now; its follower is not running (it lags)
    follow_a = asyncio.create_task(a.follow())
    dead = AIOKafkaProducer(transactional_id=f"dead-{ns}", **kafka_settings.client_kwargs())
    await packets(0, 5)
    loop_a = loop_for(kafka_settings, a, group, n)
    task_a = asyncio.create_task(loop_a.run())
    try:
        await processed_to(kafka_settings, group, n["hj212"], 5)
        if open_elsewhere:
            # Another stage's instance, killed mid-transaction: A's commits from now on (the episode
            # opening) lie beyond the last stable offset until its partition's next owner fences it.
            await dead.start()
            await dead.begin_transaction()
            await dead.send_and_wait(n["state"], b"{}", key=b"elsewhere:0")
        await packets(5, 10)
        await processed_to(kafka_settings, group, n["hj212"], 10)
    finally:
        loop_a.stop()
        await asyncio.wait_for(task_a, 30)
        await a.stop()
        await asyncio.wait_for(follow_a, 30)
    first = [json.loads(r.value) for r in await read_all(kafka_settings, n["cases"], expect=1, timeout_s=10)]
    assert [c["event_type"] for c in first] == ["case.reported"]

    await packets(10, 15)
    loop_b = loop_for(kafka_settings, b, group, n)
    task_b = asyncio.create_task(loop_b.run())

    async def fence_the_dead() -> None:
        await asyncio.sleep(2)  # B takes the partition over meanwhile
        fencer = AIOKafkaProducer(transactional_id=f"dead-{ns}", **kafka_settings.client_kwargs())
        await fencer.start()
        await fencer.stop()

    fencing = asyncio.create_task(fence_the_dead()) if open_elsewhere else None
    try:
        await processed_to(kafka_settings, group, n["hj212"], 15)
    finally:
        if fencing is not None:
            await fencing
            await dead.stop()
        loop_b.stop()
        await asyncio.wait_for(task_b, 30)
        await b.stop()
        await producer.stop()
    cases = [json.loads(r.value) for r in await read_all(kafka_settings, n["cases"], timeout_s=3)]
    reported = [c for c in cases if c["event_type"] == "case.reported"]
    assert len(reported) == 1, [(c["event_type"], c["source"]["source_id"]) for c in cases]
    assert TopicPartition(n["hj212"], 0) not in loop_b._fenced
    assert await read_all(kafka_settings, n["quarantine"], timeout_s=2) == []
