"""The exactly-once loop's producers (onegrid.kafka.producer.partition_producers)."""

from __future__ import annotations

from aiokafka import TopicPartition

from onegrid.kafka.producer import make_producer, partition_producers
from onegrid.settings import KafkaSettings


async def test_each_partition_has_its_own_transactional_id_and_its_producer_does_not_linger() -> None:
    """A batch's outputs are sent together and its transaction commits right after: lingering for
    more records would only hold each commit back (5 ms a transaction at the default)."""
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1")
    make = partition_producers(kafka, group="g", client_id="c")
    producer = make(TopicPartition("in", 3))
    assert producer._txn_manager.transactional_id == "g.in.3"
    plain = make_producer(kafka, client_id="p")
    try:
        assert producer._message_accumulator._linger_time == 0
        # Plain producers keep lingering: they batch records sent one by one.
        assert plain._message_accumulator._linger_time > 0
    finally:
        await producer.stop()
        await plain.stop()
