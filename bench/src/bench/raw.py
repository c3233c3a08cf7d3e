"""The baselines written directly on aiokafka: what a Python process on this machine can do at all.

- `consume`: a bare consume loop (getmany, count, nothing else): the Python client's own ceiling,
  next to Kafka's ConsumerPerformance on the same topic.
- `passthrough`: consume and produce every record unchanged to an output topic, without decoding
  it, with the consumer loop's delivery guarantee and batching (500 records, 100 ms): at least once
  (outputs acknowledged, offsets committed once a second) or, with `transactional=True`, exactly
  once (outputs and offsets in one transaction per batch). This is the denominator of the pipeline
  ratios: the same records, sizes and partitions, everything the intake does minus its own work.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from bench.kafka_io import partitions_of
from onegrid.settings import KafkaSettings

BATCH = 500
TIMEOUT_MS = 100


@dataclass
class Progress:
    """Records done and the CPU and wall time from the first batch to the last one delivered."""

    count: int = 0
    assigned: int = 0
    t_first: float | None = None
    t_last: float | None = None
    cpu_first: float = 0.0
    cpu_last: float = 0.0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def started(self) -> None:
        if self.t_first is None:
            self.t_first = time.monotonic()
            self.cpu_first = time.process_time()

    def done(self, n: int) -> None:
        self.count += n
        self.t_last = time.monotonic()
        self.cpu_last = time.process_time()

    def summary(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "t_first": self.t_first,
            "t_last": self.t_last,
            "cpu_s": self.cpu_last - self.cpu_first if self.t_first is not None else 0.0,
        }


def _consumer(kafka: KafkaSettings, topics: list[str], group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        group_id=group,
        client_id=f"{group}-c",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **kafka.client_kwargs(),
    )


async def consume(kafka: KafkaSettings, topics: list[str], group: str, progress: Progress) -> None:
    """Every partition assigned directly (no group to join) from the beginning; the clock starts
    before the first fetch, so fetching and decoding are inside the measurement."""
    consumer = AIOKafkaConsumer(
        client_id=f"{group}-c",
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **kafka.client_kwargs(),
    )
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in await partitions_of(consumer, t)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        progress.assigned = len(tps)
        progress.started()
        while not progress.stop.is_set():
            fetched = await consumer.getmany(timeout_ms=TIMEOUT_MS, max_records=BATCH)
            n = sum(len(rs) for rs in fetched.values())
            if n:
                progress.done(n)
    finally:
        await consumer.stop()


async def passthrough(
    kafka: KafkaSettings,
    topics: list[str],
    group: str,
    out_topic: str,
    progress: Progress,
    *,
    transactional: bool,
    instance: str = "0",
) -> None:
    consumer = _consumer(kafka, topics, group)
    producer = AIOKafkaProducer(
        client_id=f"{group}-p",
        acks="all",
        enable_idempotence=True,
        transactional_id=f"{group}.{instance}" if transactional else None,
        linger_ms=5,
        max_batch_size=256 * 1024,
        **kafka.client_kwargs(),
    )
    await consumer.start()
    await producer.start()
    pending: dict[TopicPartition, int] = {}
    last_commit = time.monotonic()
    try:
        while not progress.stop.is_set():
            fetched = await consumer.getmany(timeout_ms=TIMEOUT_MS, max_records=BATCH)
            progress.assigned = len(consumer.assignment())
            records = [r for rs in fetched.values() for r in rs]
            if records:
                progress.started()
                offsets = {tp: rs[-1].offset + 1 for tp, rs in fetched.items() if rs}
                if transactional:
                    async with producer.transaction():
                        await _send(producer, out_topic, records)
                        await producer.send_offsets_to_transaction(
                            {tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()}, group
                        )
                else:
                    await _send(producer, out_topic, records)
                    pending.update(offsets)
                progress.done(len(records))
            if pending and time.monotonic() - last_commit >= 1.0:
                await consumer.commit(pending)
                pending.clear()
                last_commit = time.monotonic()
        if pending:
            await consumer.commit(pending)
    finally:
        await producer.stop()
        await consumer.stop()


async def _send(producer: AIOKafkaProducer, topic: str, records: list) -> None:  # type: ignore[type-arg]
    futures = [await producer.send(topic, value=r.value, key=r.key, headers=list(r.headers)) for r in records]
    await asyncio.gather(*futures)
