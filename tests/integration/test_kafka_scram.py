"""The library's Kafka clients through a SASL_PLAINTEXT listener with SCRAM-SHA-256: topics created,
records produced (idempotent producer) and consumed in a group with committed offsets, all
authenticated; a wrong password is refused. The session broker has no SCRAM listener, so this module
starts its own broker (formatted with the SCRAM user) and stops it at the end. Its start puts no
password on a command line, and its folder is its owner's alone."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from unittest import mock

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from devstack.kafka import KafkaBroker
from devstack.paths import free_port
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
    commands: list[list[str]] = []

    def seen(real):  # type: ignore[no-untyped-def]
        def run(args, *a, **kw):  # type: ignore[no-untyped-def]
            commands.append([str(x) for x in args])
            return real(args, *a, **kw)

        return run

    # The real calls, observed: what every local user could read in `ps` while they run.
    with (
        mock.patch.object(subprocess, "run", seen(subprocess.run)),
        mock.patch.object(subprocess, "Popen", seen(subprocess.Popen)),
    ):
        broker.start()
    broker.commands = commands  # type: ignore[attr-defined]
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


async def test_no_password_on_a_command_line_and_the_data_private(scram_broker: KafkaBroker) -> None:
    commands = scram_broker.commands  # type: ignore[attr-defined]
    assert any("kafka.Kafka" in c for c in commands)
    assert [c for c in commands if any(PASSWORD in arg for arg in c)] == []
    assert scram_broker.data_dir.stat().st_mode & 0o777 == 0o700
    assert not (scram_broker.data_dir / "format.args").exists()
