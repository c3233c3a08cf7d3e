"""Topics of a bench run (unique names, so runs and tests never see each other's data) and fast
producing of prepared records."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.feeds import Legacy, published_seed
from onegrid.kafka.admin import ensure_topics
from onegrid.settings import KafkaSettings
from onegrid.topics import TopicSpec


class Namespace:
    """`bench.<run>.<name>` topics; `run` is unique per bench run."""

    def __init__(self, kafka: KafkaSettings, run: str | None = None) -> None:
        self.kafka = kafka
        self.run = run or uuid.uuid4().hex[:8]

    def name(self, base: str) -> str:
        return f"bench.{self.run}.{base}"

    async def topic(self, base: str, partitions: int = 1, *, compacted: bool = False) -> str:
        name = self.name(base)
        await ensure_topics(self.kafka, [TopicSpec(name, partitions=partitions, compacted=compacted)])
        return name

    async def topics(self, bases: Iterable[str], partitions: int = 1) -> list[str]:
        names = [self.name(b) for b in bases]
        await ensure_topics(self.kafka, [TopicSpec(n, partitions=partitions) for n in names])
        return names


def fast_producer(kafka: KafkaSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        acks="all", linger_ms=20, max_batch_size=512 * 1024, client_id="bench-loader", **kafka.client_kwargs()
    )


async def produce(kafka: KafkaSettings, topic: str, records: Sequence[Legacy]) -> None:
    """Every record on `topic`, acknowledged by the broker, before returning."""
    producer = fast_producer(kafka)
    await producer.start()
    try:
        futures = [await producer.send(topic, r.value, key=r.key, headers=list(r.headers)) for r in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def produce_at_once(kafka: KafkaSettings, topic: str, records: Sequence[Legacy]) -> float:
    """Every record on `topic` in one transaction: `read_committed` consumers see none of them until
    all are there, so a measured consumer never waits for the loader. Returns when the commit was
    acknowledged (monotonic clock)."""
    producer = AIOKafkaProducer(
        acks="all",
        linger_ms=20,
        max_batch_size=512 * 1024,
        client_id="bench-loader",
        transactional_id=f"bench-loader-{uuid.uuid4().hex[:8]}",
        transaction_timeout_ms=300_000,  # a large load on a loaded machine
        **kafka.client_kwargs(),
    )
    await producer.start()
    try:
        async with producer.transaction():
            futures = [
                await producer.send(topic, r.value, key=r.key, headers=list(r.headers)) for r in records
            ]
            await asyncio.gather(*futures)
        return time.monotonic()
    finally:
        await producer.stop()


async def publish_seed(kafka: KafkaSettings, topic: str) -> int:
    """The registry's seed (the reference city) on a registry changelog topic, as grid-registry does."""
    records = [Legacy(f"{r['kind']}:{r['code']}".encode(), json.dumps(r).encode()) for r in published_seed()]
    await produce(kafka, topic, records)
    return len(records)


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    """The topic's partitions, refreshing the consumer's metadata until it knows them."""
    for _ in range(100):
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return sorted(parts)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.05)
    raise RuntimeError(f"topic {topic} has no partitions (does it exist?)")
