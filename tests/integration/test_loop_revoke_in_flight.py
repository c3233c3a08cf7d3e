"""A rebalance that lands while a batch's transaction is in flight (issue 13, found by the fault suite:
after SIGKILL of an instance, the survivor held its partitions and never processed them again).

The revoke callback runs beside the loop's batch. It used to stop the revoked partition's producer at
once; the batch, inside `send_offsets_to_transaction` on that producer, then waited for a reply its
stopped sender would never give, and the loop hung for good (it stayed in its group as long as the
heartbeat ran, holding partitions it never read). Now the producer of a transaction in flight is
stopped when the transaction ends; the transaction itself is sound (the partition's next owner fences
it by transactional id before reading the committed offset)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from onegrid.kafka import BatchResult, OutRecord, Record
from onegrid.kafka.admin import ensure_topics
from onegrid.kafka.loop import ConsumerLoop, LoopConfig, make_consumer
from onegrid.kafka.producer import make_producer, partition_producers
from onegrid.settings import KafkaSettings
from onegrid.topics import TopicSpec

from .conftest import read_all

pytestmark = pytest.mark.asyncio(loop_scope="session")

RECORDS = 30


async def test_a_revoke_during_a_transaction_neither_hangs_the_loop_nor_loses_the_batch(
    kafka_settings: KafkaSettings,
) -> None:
    uid = uuid.uuid4().hex[:8]
    t_in, t_out, t_dlq = (f"t.inflight.{k}.{uid}" for k in ("in", "out", "dlq"))
    await ensure_topics(
        kafka_settings,
        [TopicSpec(t_in, partitions=2), TopicSpec(t_out, partitions=1), TopicSpec(t_dlq, partitions=1)],
    )
    group = f"inflight-{uid}"
    in_transaction, revoked = asyncio.Event(), asyncio.Event()
    make = partition_producers(kafka_settings, group=group, client_id=f"a-{uid}")

    def producers(tp: TopicPartition) -> AIOKafkaProducer:
        """The real producer; its first offsets-to-transaction waits until a rebalance revoked its
        partition (a slow broker during a rebalance, made certain)."""
        producer = make(tp)
        send_offsets = producer.send_offsets_to_transaction

        async def slow_send_offsets(offsets: object, group_id: str) -> None:
            if not in_transaction.is_set():
                in_transaction.set()
                await revoked.wait()
            await send_offsets(offsets, group_id)

        producer.send_offsets_to_transaction = slow_send_offsets  # type: ignore[method-assign]
        return producer

    async def upper(records: Sequence[Record]) -> BatchResult:
        return BatchResult(outputs=[OutRecord(t_out, (r.value or b"").upper(), r.key) for r in records])

    loop = ConsumerLoop(
        consumer=make_consumer(kafka_settings, group_id=group, client_id=f"a-{uid}"),
        handler=upper,
        transactional=producers,
        config=LoopConfig(
            group_id=group,
            topics=(t_in,),
            service="inflight",
            dlq_topic=t_dlq,
            exactly_once=True,
            batch_max_records=5,
        ),
    )
    feeder = make_producer(kafka_settings, client_id=f"feeder-{uid}")
    await feeder.start()
    for i in range(RECORDS):
        await feeder.send(t_in, b"m%d" % i, partition=i % 2)
    await feeder.flush()
    await feeder.stop()

    task = asyncio.create_task(loop.run())
    other = make_consumer(kafka_settings, group_id=group, client_id=f"b-{uid}")
    try:
        await asyncio.wait_for(in_transaction.wait(), 120)
        # A second member joins: the group revokes the loop's partitions while its batch commits.
        revokes = loop._revokes
        await other.start()
        other.subscribe([t_in])
        for _ in range(600):
            if loop._revokes > revokes:
                break
            await asyncio.sleep(0.1)
        assert loop._revokes > revokes, "the group never rebalanced"
        revoked.set()
        await other.getmany(timeout_ms=2000)  # takes a partition, processes nothing
        await other.stop()  # leaves: the loop gets both partitions back and finishes the topic
        out = await read_all(kafka_settings, t_out, expect=RECORDS, timeout_s=180)
        assert sorted(r.value for r in out) == sorted(b"M%d" % i for i in range(RECORDS))  # once each
    finally:
        revoked.set()
        loop.stop()
        await asyncio.wait_for(task, 120)
    assert not loop._producers  # every producer stopped, the one of the interrupted batch too
