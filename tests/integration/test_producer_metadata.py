"""Producers on a real broker: a topic created after a producer started does not cost the records it
has in flight for other topics their partitions' leaders."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from onegrid.kafka import OutRecord
from onegrid.kafka.producer import make_producer, send_each
from onegrid.settings import KafkaSettings

from .conftest import read_all

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_topic_created_after_the_start_leaves_the_other_topics_leaders_known(
    kafka_settings: KafkaSettings, topics
) -> None:
    """aiokafka refreshes the metadata of the topics it tracks only, and a topic it found in the
    metadata it fetched at start is not tracked: the first send to a topic created later made the
    next refresh hold that topic alone, and records in flight for the others waited for a leader
    until the request timeout, then failed with NotLeaderForPartitionError (the outbox relay sending
    a pass with its entry on a just-created outbox.passes.v1)."""
    old = await topics("metadata-old")
    producer = make_producer(
        kafka_settings, client_id="metadata", transactional_id=f"metadata-{uuid.uuid4().hex[:8]}", linger_ms=0
    )
    await producer.start()  # knows `old` (and every other topic) from its first metadata
    try:
        new = await topics("metadata-new")
        async with producer.transaction():
            outcomes = await asyncio.wait_for(
                send_each(producer, [OutRecord(old, b"a"), OutRecord(new, b"b")]), timeout=30
            )
        assert outcomes == [None, None]
    finally:
        await producer.stop()
    assert [r.value for r in await read_all(kafka_settings, old, expect=1)] == [b"a"]
    assert [r.value for r in await read_all(kafka_settings, new, expect=1)] == [b"b"]
