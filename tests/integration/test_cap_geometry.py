"""One crafted CAP alert must not freeze intake: its area (a self-intersecting ring whose repair takes
close to a minute) is computed in a worker process with a time limit, the alert is dead-lettered
with `cap.geometry_timeout` and its original bytes, and the records after it are processed.

The intake pipeline runs in-process on the session's Kafka (test-private topics), as the service
runs it: intake_parts() and an exactly-once ConsumerLoop."""

from __future__ import annotations

import asyncio
import json
import random
import re
import uuid
from datetime import datetime, timedelta

from aiokafka import AIOKafkaProducer
from support.records import BEIJING, HOME, cap_alert

from grid_registry.domain.seed import seed_records
from intake.bootstrap import intake_parts
from intake.pipeline import IntakeTopics
from onegrid.kafka.admin import ensure_topics
from onegrid.kafka.loop import ConsumerLoop, LoopConfig, make_consumer
from onegrid.kafka.producer import make_producer, partition_producers
from onegrid.settings import KafkaSettings
from onegrid.topics import TopicSpec

from .conftest import read_all


def crafted_alert(identifier: str, points: int = 300, seed: int = 1) -> bytes:
    """A valid CAP alert whose polygon crosses itself tens of thousands of times."""
    rng = random.Random(seed)
    ring = [(HOME[0] + rng.uniform(-0.05, 0.05), HOME[1] + rng.uniform(-0.05, 0.05)) for _ in range(points)]
    ring.append(ring[0])
    polygon = " ".join(f"{lat:.6f},{lon:.6f}" for lat, lon in ring)
    doc = cap_alert(identifier, sent=datetime(2026, 5, 4, 9, 0, tzinfo=BEIJING)).decode()
    return re.sub(r"<circle>[^<]*</circle>", f"<polygon>{polygon}</polygon>", doc).encode()


async def test_a_crafted_cap_area_is_dead_lettered_at_the_time_limit_and_intake_goes_on(
    kafka_settings: KafkaSettings,
) -> None:
    ns = uuid.uuid4().hex[:8]
    cap, cases, state, registry, dlq, quarantine = (
        f"t.{base}.{ns}" for base in ("cap", "cases", "state", "registry", "dlq", "quarantine")
    )
    specs = [TopicSpec(t) for t in (cap, cases, dlq, quarantine)]
    specs += [TopicSpec(t, compacted=True) for t in (state, registry)]
    await ensure_topics(kafka_settings, specs)
    producer = AIOKafkaProducer(**kafka_settings.client_kwargs())
    await producer.start()
    for rec in seed_records():
        await producer.send(registry, json.dumps(rec).encode(), key=f"{rec['kind']}:{rec['code']}".encode())
    bad = crafted_alert(f"CRAFTED-{ns}")
    good = cap_alert(f"FINE-{ns}", sent=datetime(2026, 5, 4, 9, 0, tzinfo=BEIJING) + timedelta(days=3))
    await producer.send_and_wait(cap, bad, key=b"bad")
    await producer.send_and_wait(cap, good, key=b"good")
    await producer.stop()

    topics = IntakeTopics(feeds={cap: "cap"}, cases=cases, state=state)
    parts = intake_parts(
        kafka_settings,
        client_id=f"intake-{ns}",
        topics=topics,
        registry_topic=registry,
        cap_geometry_limit_s=2.0,
    )
    await parts.catch_up()
    follow = asyncio.create_task(parts.follow())
    group = f"intake.{ns}"
    out = make_producer(kafka_settings, client_id=f"{group}-p")
    await out.start()
    loop = ConsumerLoop(
        consumer=make_consumer(kafka_settings, group_id=group, client_id=f"{group}-c"),
        handler=parts.pipeline.handle,
        producer=out,
        transactional=partition_producers(kafka_settings, group=group, client_id=f"{group}-t"),
        prepare=parts.handover,
        config=LoopConfig(
            group_id=group,
            topics=(cap,),
            service="intake",
            exactly_once=True,
            dlq_topic=dlq,
            quarantine_topic=quarantine,
        ),
    )
    running = asyncio.create_task(loop.run())
    try:
        [dead] = await read_all(kafka_settings, dlq, expect=1, timeout_s=40)
        [case] = await read_all(kafka_settings, cases, expect=1, timeout_s=40)
    finally:
        loop.stop()
        await running
        await parts.stop()
        await follow
        await out.stop()
    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["dlq_reason"] == "cap.geometry_timeout", headers
    assert dead.value == bad and dead.key == b"bad"
    assert json.loads(case.value)["source"]["source_id"].endswith(f"FINE-{ns}")
    assert parts.pipeline.cap_geometry is not None and parts.pipeline.cap_geometry.timeouts == 1
