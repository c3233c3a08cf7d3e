"""Consume a department's orders from Kafka (extra `kafka`: pip install 'onegrid-departments[kafka]').

`dispatch.orders.<dept>.v1`, key = case_id (one case's orders in order), produced in transactions:
read with `isolation_level=read_committed`, or an aborted order would be seen. Offsets are committed
only after the handler returned, record by record, so a crash re-delivers what was not handled
(at least once: handle idempotently by order_id). A record that is not an order goes to `on_invalid`
(log it, keep it) and is committed: it would never decode, whatever the retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from onegrid_departments.orders import Order, OrderInvalid, decode_order

log = logging.getLogger(__name__)

Handle = Callable[[Order], Awaitable[None]]
OnInvalid = Callable[[Any, OrderInvalid], Awaitable[None]]


def orders_topic(department: str) -> str:
    return f"dispatch.orders.{department}.v1"


async def _log_invalid(record: Any, error: OrderInvalid) -> None:
    log.error("record %s[%d]@%d is not an order: %s", record.topic, record.partition, record.offset, error)


async def consume_orders(
    bootstrap_servers: str,
    department: str,
    handle: Handle,
    *,
    group_id: str | None = None,
    topic: str | None = None,
    stop: asyncio.Event | None = None,
    on_invalid: OnInvalid = _log_invalid,
    **client_kwargs: Any,
) -> None:
    """Hand every order to `handle`, committing each after it returned, until `stop` is set.

    `client_kwargs` go to aiokafka (security_protocol, sasl_mechanism, sasl_plain_username, ...).
    An exception from `handle` stops the consumer without committing that order: it is read again
    by the next consumer of the group.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        topic or orders_topic(department),
        bootstrap_servers=bootstrap_servers,
        group_id=group_id or f"{department}.orders",
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **client_kwargs,
    )
    await consumer.start()
    stop = stop or asyncio.Event()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for r in records:
                    try:
                        order = decode_order(r.value or b"")
                    except OrderInvalid as e:
                        await on_invalid(r, e)
                    else:
                        await handle(order)
                    await consumer.commit({TopicPartition(tp.topic, tp.partition): r.offset + 1})
    finally:
        await consumer.stop()
