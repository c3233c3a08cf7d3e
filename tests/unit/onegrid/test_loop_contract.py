"""The consumer loop's contract (tests/support/loop_contract.py) on the in-memory broker; the same
suite runs on the real broker in tests/integration/test_loop_contract.py."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest
from aiokafka import TopicPartition
from support.loop_contract import Handler, LoopContract, Seen
from support.waiting import wait_until

from onegrid.kafka.loop import ConsumerLoop, LoopConfig
from onegrid.kafka.memory import MemoryBroker, MemoryConsumer, MemoryProducer


class MemoryBackend:
    def __init__(self) -> None:
        self.broker = MemoryBroker(partitions=1)

    async def topic(self, base: str) -> str:
        return f"t.{base}.{uuid.uuid4().hex[:10]}"

    async def produce(self, topic: str, items: Sequence[tuple[bytes, bytes]]) -> None:
        for key, value in items:
            self.broker.append(topic, value, key)

    async def loop(self, handler: Handler, *, source: str, group: str, dlq: str, eos: bool) -> ConsumerLoop:
        broker = self.broker
        return ConsumerLoop(
            consumer=MemoryConsumer(broker, group),  # type: ignore[arg-type]
            handler=handler,
            producer=MemoryProducer(broker),  # type: ignore[arg-type]
            transactional=(
                (lambda tp: MemoryProducer(broker, transactional_id=f"{group}.{tp.topic}.{tp.partition}"))  # type: ignore[arg-type,return-value]
                if eos
                else None
            ),
            config=LoopConfig(
                group_id=group, topics=(source,), service="contract", dlq_topic=dlq, exactly_once=eos
            ),
        )

    async def read(self, topic: str, expect: int) -> list[Seen]:
        await wait_until(lambda: len(self.broker.records(topic)) >= expect, interval_s=0.01)
        return [Seen(r.key, r.value, dict(r.headers)) for r in self.broker.records(topic)]

    async def committed(self, group: str, topic: str) -> int | None:
        return self.broker.committed.get((group, TopicPartition(topic, 0)))


class TestLoopContractInMemory(LoopContract):
    @pytest.fixture
    def backend(self) -> MemoryBackend:
        return MemoryBackend()
