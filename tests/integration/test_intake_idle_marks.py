"""What the correlation stage writes while the city is idle, on the real broker, and that the audit
tap leaves it out of the trail (figures printed with `-s`; no timed assertion)."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from onegrid import topics
from onegrid.kafka.admin import ensure_topics
from onegrid.settings import KafkaSettings
from onegrid.topics import TopicSpec

from .test_intake_instances import FEEDS, Run, seed_registry

pytestmark = pytest.mark.timeout(300)

IDLE_S = 20


async def records_on(kafka: KafkaSettings, names: list[str]) -> dict[str, int]:
    c = AIOKafkaConsumer(**kafka.client_kwargs())
    await c.start()
    try:
        out = {}
        for n in names:
            ends = await c.end_offsets([TopicPartition(n, p) for p in range(3)])  # Run's topics: 3 each
            out[n] = sum(ends.values())
        return out
    finally:
        await c.stop()


async def test_an_idle_intake_writes_control_marks_the_audit_tap_does_not_record(
    kafka_settings: KafkaSettings,
) -> None:
    from audit.settings import TAP_PATTERN

    ns = uuid.uuid4().hex[:8]
    legacy = {f: f"t.idle.legacy.{f}.{ns}" for f in FEEDS}
    registry = f"t.idle.registry.{ns}"
    await ensure_topics(
        kafka_settings,
        [TopicSpec(t, partitions=3) for t in legacy.values()]
        + [TopicSpec(registry, partitions=1, compacted=True)],
    )
    await seed_registry(kafka_settings, registry)
    run = Run(kafka_settings, legacy, registry, instances=1)
    await run.create_topics()
    from intake.bootstrap import intake_parts

    parts = intake_parts(kafka_settings, client_id=f"{ns}-0", topics=run.topics, registry_topic=registry)
    await parts.catch_up()
    loops = run.loops(parts, 0)
    tasks = [asyncio.create_task(parts.follow()), *(asyncio.create_task(loop.run()) for loop in loops)]
    stage = [run.n["correlate"], run.n["cstate"]]
    try:
        await asyncio.sleep(5)  # settled: groups joined, every partition read to its end
        before = await records_on(kafka_settings, stage)
        t0 = asyncio.get_running_loop().time()
        await asyncio.sleep(IDLE_S)
        after = await records_on(kafka_settings, stage)
        took = asyncio.get_running_loop().time() - t0
    finally:
        for loop in loops:
            loop.stop()
        await parts.stop()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
    rates = {n: (after[n] - before[n]) / took for n in stage}
    tapped = sum(
        rates[n]
        for n, name in zip(stage, (topics.INTAKE_CORRELATE, topics.INTAKE_CORRELATE_STATE), strict=True)
        if re.fullmatch(TAP_PATTERN, name)
    )
    print(f"\nidle {took:.0f} s, records/s: {rates}; trail entries/min from them: {tapped * 60:.0f}")
    # Nothing happens, yet the stage writes (a measurement that saw nothing would prove nothing) ...
    assert sum(after[n] - before[n] for n in stage) > 0
    # ... and none of it reaches the trail.
    assert tapped == 0
