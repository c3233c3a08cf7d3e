"""The library's Kafka clients through a SASL_PLAINTEXT listener with SCRAM-SHA-256: topics created,
records produced (idempotent producer) and consumed in a group with committed offsets, all
authenticated; a wrong password is refused. The session broker has no SCRAM listener, so this module
starts its own broker (formatted with the SCRAM user) and stops it at the end."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from onegrid.devstack.kafka import KafkaBroker
from onegrid.devstack.paths import free_port
from onegrid.kafka.admin import ensure_topics
from onegrid.kafka.loop import make_consumer
from onegrid.kafka.producer import make_producer
from onegrid.settings import KafkaSettings
from onegrid.topics import TopicSpec

pytestmark = pytest.mark.asyncio(loop_scope="session")
USER, PASSWORD = "alice", "alice-scram-password-7f3e"


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(
        tmp_path_factory.mktemp("kafka-scram"),
        port=free_port(),
        controller_port=free_port(),
        scram_port=free_port(),
        scram_users={USER: PASSWORD},
        heap="384m",
    )
    broker.start()
    try:
        asyncio.run(broker.wait_ready())
        yield broker
    finally:
        broker.stop()


def scram(broker: KafkaBroker, password: str) -> KafkaSettings:
    assert broker.scram_bootstrap is not None
    return KafkaSettings(
        bootstrap_servers=broker.scram_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username=USER,
        sasl_password=password,
    )


async def test_produce_and_consume_through_scram(scram_broker: KafkaBroker) -> None:
    kafka = scram(scram_broker, PASSWORD)
    topic = "t.scram.cases"
    assert (await ensure_topics(kafka, [TopicSpec(topic, partitions=2)]))[topic] in ("created", "unchanged")
    producer = make_producer(kafka, client_id="scram-test")
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, f"case-{i}".encode(), key=f"k{i}".encode())
    finally:
        await producer.stop()
    consumer = make_consumer(kafka, group_id="scram-group", client_id="scram-test-c")
    consumer.subscribe([topic])
    await consumer.start()
    got: list[bytes] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(got) < 10 and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            got += [r.value for records in batch.values() for r in records if r.value is not None]
        await consumer.commit()
        committed = [await consumer.committed(TopicPartition(topic, p)) for p in (0, 1)]
    finally:
        await consumer.stop()
    assert sorted(got) == sorted(f"case-{i}".encode() for i in range(10))
    assert sum(c or 0 for c in committed) == 10


async def test_a_wrong_password_is_refused(
    scram_broker: KafkaBroker, caplog: pytest.LogCaptureFixture
) -> None:
    producer = make_producer(scram(scram_broker, "not-the-password"), client_id="scram-intruder")
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(producer.start(), timeout=30)
    await producer.stop()
    # aiokafka reports the broker's refusal in its log and fails the bootstrap.
    assert "SaslAuthenticationFailed" in caplog.text
