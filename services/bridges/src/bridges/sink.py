"""Writing a legacy record and knowing when Kafka has it: the one place every bridge produces.

`send` queues the record (in order, per partition) and returns a handle; `acked` waits for the
broker's acknowledgement (the producer is acks=all and idempotent), at most `timeout_s`. A bridge
answers its sender only after `acked` returned; a failure or timeout means: no answer, the sender
sends again (a record that did reach Kafka meanwhile is then there twice, same bytes and ce_id;
intake takes a source record in once)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer

from onegrid.envelope import Headers


class NotAcknowledged(Exception):
    pass


class Sink:
    def __init__(self, producer: Callable[[], AIOKafkaProducer | None]) -> None:
        self._producer = producer

    async def send(
        self, topic: str, value: bytes, key: str, headers: Headers, *, timeout_s: float
    ) -> asyncio.Future[Any]:
        producer = self._producer()
        if producer is None:
            raise NotAcknowledged("the producer is not started")
        try:
            # send() itself waits while the topic's metadata is unknown (e.g. the broker is away).
            return await asyncio.wait_for(
                producer.send(topic, value=value, key=key.encode(), headers=list(headers)), timeout_s
            )
        except Exception as e:
            raise NotAcknowledged(f"{type(e).__name__}: {e}") from e

    @staticmethod
    async def acked(handle: asyncio.Future[Any], *, timeout_s: float) -> Any:
        try:
            return await asyncio.wait_for(asyncio.shield(handle), timeout_s)
        except Exception as e:
            raise NotAcknowledged(f"{type(e).__name__}: {e}") from e

    async def write(self, topic: str, value: bytes, key: str, headers: Headers, *, timeout_s: float) -> Any:
        """Send and wait for the acknowledgement; returns the record's metadata (partition, offset)."""
        handle = await self.send(topic, value, key, headers, timeout_s=timeout_s)
        return await self.acked(handle, timeout_s=timeout_s)
