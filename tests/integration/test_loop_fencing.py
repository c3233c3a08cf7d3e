"""Fencing of a stale instance (issue 13.3), on the real broker: an exactly-once loop whose instance
stalls past the poll interval loses its partition; the new owner processes the records; when the
stale instance wakes up, its late transaction is fenced, so every output is there exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest

from onegrid.kafka import BatchResult, OutRecord, Record
from onegrid.kafka.loop import ConsumerLoop
from onegrid.settings import KafkaSettings, ServiceSettings
from onegrid.topics import TopicSpec
from onegrid.wiring import Wiring, wire

from .conftest import read_all

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _instance(
    kafka: KafkaSettings, service: str, instance_id: str, topics: dict[str, str], handler
) -> tuple[Wiring, ConsumerLoop]:
    settings = ServiceSettings(
        service_name=service,
        instance_id=instance_id,
        kafka=kafka,
        max_poll_interval_ms=4000,
        commit_interval_s=0.2,
    )
    specs = [TopicSpec(t, partitions=1) for t in topics.values()]
    w = wire(settings, migrations=None, topics=specs)
    w.add_loop(
        name="work",
        topics=[topics["in"]],
        handler=handler,
        exactly_once=True,
        dlq_topic=topics["dlq"],
        quarantine_topic=None,
    )
    await w.runtime.on_start[0]()  # topics, producer and the loop (no migrations here)
    return w, w.runtime.loops[0]


def upper(records: Sequence[Record]) -> BatchResult:
    return BatchResult(outputs=[OutRecord(TOPICS["out"], (r.value or b"").upper(), r.key) for r in records])


TOPICS: dict[str, str] = {}


async def test_a_stalled_instance_is_fenced_and_its_late_batch_never_shows(
    kafka_settings: KafkaSettings,
) -> None:
    uid = uuid.uuid4().hex[:8]
    TOPICS.update({k: f"t.fence.{k}.{uid}" for k in ("in", "out", "dlq")})
    service = f"fence-{uid}"
    stalled, release = asyncio.Event(), asyncio.Event()

    async def stalling(records: Sequence[Record]) -> BatchResult:
        if not stalled.is_set():
            stalled.set()
            await release.wait()  # a GC pause, a SIGSTOP, a retry that takes too long
        return upper(records)

    async def normal(records: Sequence[Record]) -> BatchResult:
        return upper(records)

    wa, a = await _instance(kafka_settings, service, "a", TOPICS, stalling)
    from onegrid.kafka.producer import make_producer

    p = make_producer(kafka_settings, client_id=f"feeder-{uid}")
    await p.start()
    for i in range(20):
        await p.send(TOPICS["in"], b"m%d" % i, key=b"k")
    await p.flush()
    await p.stop()

    a_task = asyncio.create_task(a.run())
    await asyncio.wait_for(stalled.wait(), 60)
    wb, b = await _instance(kafka_settings, service, "b", TOPICS, normal)
    b_task = asyncio.create_task(b.run())
    try:
        # The new owner processes everything while the stale instance is still stuck.
        done = await read_all(kafka_settings, TOPICS["out"], expect=20, timeout_s=60)
        assert len(done) == 20
        release.set()
        a.stop()
        await asyncio.wait_for(a_task, 60)
    finally:
        release.set()
        a.stop()
        b.stop()
        await asyncio.gather(a_task, b_task, return_exceptions=True)
        await wa.stop_clients()
        await wb.stop_clients()
    out = await read_all(kafka_settings, TOPICS["out"], expect=20, timeout_s=20)
    assert sorted(r.value for r in out) == sorted(b"M%d" % i for i in range(20))  # none twice
