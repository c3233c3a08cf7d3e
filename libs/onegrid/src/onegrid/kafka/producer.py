"""Producers: idempotent (acks=all) by default, transactional when given a transactional id."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaTimeoutError, ProducerClosed

from onegrid.kafka.partitioner import partition_of
from onegrid.kafka.policy import is_transient
from onegrid.kafka.records import OutRecord
from onegrid.settings import KafkaSettings


def make_producer(
    kafka: KafkaSettings,
    *,
    client_id: str,
    transactional_id: str | None = None,
    linger_ms: int = 5,
    max_batch_size: int = 256 * 1024,
) -> AIOKafkaProducer:
    """An idempotent producer; with `transactional_id`, one that can take part in transactions.

    A restarted instance with the same transactional id fences its predecessor (a zombie can no
    longer commit), which is what makes consume-transform-produce exactly once.
    """
    return AIOKafkaProducer(
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        transactional_id=transactional_id,
        linger_ms=linger_ms,
        max_batch_size=max_batch_size,
        compression_type=None,
        # Kafka's default partitioner without aiokafka's per-byte murmur2 (onegrid.kafka.partitioner).
        partitioner=partition_of,
        **kafka.client_kwargs(),
    )


def partition_producers(
    kafka: KafkaSettings, *, group: str, client_id: str
) -> Callable[[TopicPartition], AIOKafkaProducer]:
    """The transactional producers of an exactly-once loop: one per input partition, with the id
    `<group>.<topic>.<partition>`. Whichever instance the group gives the partition to starts the
    producer of that id and so fences the previous owner (see the loop's contract).

    They do not linger: a batch's outputs are all sent at once and the transaction commits right
    after them, so waiting for more records only delays the commit (5 ms a transaction)."""

    def make(tp: TopicPartition) -> AIOKafkaProducer:
        return make_producer(
            kafka,
            client_id=f"{client_id}-{tp.topic}-{tp.partition}",
            transactional_id=f"{group}.{tp.topic}.{tp.partition}",
            linger_ms=0,
        )

    return make


async def send_each(producer: Any, records: Sequence[OutRecord]) -> list[BaseException | None]:
    """Send every record and wait for the broker's answer to each: per record None (acknowledged) or
    its failure. Sends are issued back to back so the producer batches them. A failure of the send
    call itself that is not the record's (no metadata, the producer closed) stops issuing: the
    records after it are not sent and get that failure too, so a later retry keeps their order."""
    return [a if isinstance(a, BaseException) else None for a in await send_each_answers(producer, records)]


async def send_each_answers(producer: Any, records: Sequence[OutRecord]) -> list[Any]:
    """`send_each`, with the broker's answer (its RecordMetadata: partition, offset) where a record
    was acknowledged, in place of None."""
    issued: list[asyncio.Future[Any] | BaseException] = []
    stopped: BaseException | None = None
    for r in records:
        if stopped is not None:
            issued.append(stopped)
            continue
        try:
            issued.append(
                await producer.send(
                    r.topic, value=r.value, key=r.key, headers=list(r.headers), partition=r.partition
                )
            )
        except Exception as exc:
            issued.append(exc)
            if is_transient(exc) or isinstance(exc, (IllegalStateError, KafkaTimeoutError, ProducerClosed)):
                stopped = exc
    futures = [f for f in issued if not isinstance(f, BaseException)]
    answers = iter(await asyncio.gather(*futures, return_exceptions=True))
    return [f if isinstance(f, BaseException) else next(answers) for f in issued]


async def send_all(producer: AIOKafkaProducer, records: Iterable[OutRecord]) -> None:
    """Send every record and wait until the broker has them all (raises the first failure).

    Sends are issued back to back so the producer batches them; per-partition order is the order
    of `records`.
    """
    futures = [
        await producer.send(r.topic, value=r.value, key=r.key, headers=list(r.headers), partition=r.partition)
        for r in records
    ]
    if futures:
        await asyncio.gather(*futures)
