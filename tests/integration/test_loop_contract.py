"""The consumer loop's contract (tests/support/loop_contract.py) on the session's real broker; the
same suite runs on the in-memory broker in tests/unit/onegrid/test_loop_contract.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from support.loop_contract import Handler, LoopContract, Seen

from onegrid.kafka.loop import ConsumerLoop, LoopConfig, make_consumer
from onegrid.kafka.producer import make_producer, partition_producers
from onegrid.settings import KafkaSettings

from .conftest import TopicFactory, read_all

pytestmark = pytest.mark.asyncio(loop_scope="session")


class KafkaBackend:
    def __init__(self, kafka: KafkaSettings, topics: TopicFactory) -> None:
        self.kafka, self.topics = kafka, topics
        self.producers: list[AIOKafkaProducer] = []  # of at-least-once loops: stopped after the test

    async def close(self) -> None:
        for producer in self.producers:
            await producer.stop()

    async def topic(self, base: str) -> str:
        return await self.topics(f"contract.{base}")

    async def produce(self, topic: str, items: Sequence[tuple[bytes, bytes]]) -> None:
        producer = make_producer(self.kafka, client_id=f"feeder-{uuid.uuid4().hex[:8]}")
        await producer.start()
        try:
            for key, value in items:
                await producer.send_and_wait(topic, value, key=key, partition=0)
        finally:
            await producer.stop()

    async def loop(self, handler: Handler, *, source: str, group: str, dlq: str, eos: bool) -> ConsumerLoop:
        client_id = f"contract-{uuid.uuid4().hex[:8]}"
        producer = None
        if not eos:  # exactly once: the loop starts a transactional producer per partition itself
            producer = make_producer(self.kafka, client_id=client_id)
            await producer.start()
            self.producers.append(producer)
        return ConsumerLoop(
            consumer=make_consumer(self.kafka, group_id=group, client_id=client_id),
            handler=handler,
            producer=producer,
            transactional=partition_producers(self.kafka, group=group, client_id=client_id) if eos else None,
            config=LoopConfig(
                group_id=group, topics=(source,), service="contract", dlq_topic=dlq, exactly_once=eos
            ),
        )

    async def read(self, topic: str, expect: int) -> list[Seen]:
        records = await read_all(self.kafka, topic, expect=expect)
        return [Seen(r.key, r.value, dict(r.headers)) for r in records]

    async def committed(self, group: str, topic: str) -> int | None:
        consumer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **self.kafka.client_kwargs())
        await consumer.start()
        try:
            offset: int | None = await consumer.committed(TopicPartition(topic, 0))
            return offset
        finally:
            await consumer.stop()


class TestLoopContractOnKafka(LoopContract):
    @pytest_asyncio.fixture(loop_scope="session")
    async def backend(
        self, kafka_settings: KafkaSettings, topics: TopicFactory
    ) -> AsyncIterator[KafkaBackend]:
        backend = KafkaBackend(kafka_settings, topics)
        yield backend
        await backend.close()
