"""onegrid.outbox on real PostgreSQL and Kafka: only committed rows are published, in order, with their
headers; a failed send keeps them for the next pass; a row the broker refuses for good is set aside
with the reason and the relay goes on; one relay at a time holds a table."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from onegrid.db import make_engine
from onegrid.kafka import OutRecord
from onegrid.kafka.memory import MemoryBroker, MemoryProducer
from onegrid.kafka.producer import make_producer
from onegrid.outbox import (
    OutboxRelay,
    SetAsideLimitExceeded,
    enqueue,
    outbox_ddl,
    replay_set_aside,
    set_aside_ddl,
    set_aside_rows,
)
from onegrid.settings import KafkaSettings

from .conftest import read_all

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    schema = f"outbox_{uuid.uuid4().hex[:8]}"
    url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = make_engine(url, schema, pool_size=2)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.execute(text(f'SET search_path TO "{schema}"'))
        await conn.execute(text(outbox_ddl()))
        await conn.execute(text(set_aside_ddl()))
    yield engine
    await engine.dispose()


def records(topic: str, n: int, start: int = 0) -> list[OutRecord]:
    return [
        OutRecord(topic, f"v{i}".encode(), key=f"k{i % 3}".encode(), headers=[("ce_id", f"id-{i}".encode())])
        for i in range(start, start + n)
    ]


async def test_committed_rows_reach_kafka_in_order_and_rolled_back_rows_never(
    engine: AsyncEngine, kafka_settings: KafkaSettings, topics
) -> None:
    topic = await topics("outbox")
    async with engine.begin() as conn:
        await enqueue(conn, records(topic, 5))
    with pytest.raises(RuntimeError):
        async with engine.begin() as conn:
            await enqueue(conn, records(topic, 3, start=100))
            raise RuntimeError("the change failed: its outbox rows go with it")
    async with engine.begin() as conn:
        await enqueue(conn, records(topic, 2, start=5))
        await enqueue(conn, [OutRecord(topic, None, key=b"k0")])  # a tombstone

    producer = make_producer(kafka_settings, client_id="outbox-test")
    await producer.start()
    try:
        relay = OutboxRelay(engine, batch_size=3)
        assert await relay.drain(producer) == 8
        assert await relay.drain(producer) == 0
    finally:
        await producer.stop()
    got = await read_all(kafka_settings, topic, expect=8)
    assert [r.value for r in got] == [f"v{i}".encode() for i in range(7)] + [None]
    assert [dict(r.headers)["ce_id"] for r in got[:7]] == [f"id-{i}".encode() for i in range(7)]
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM outbox")) == 0


async def test_a_failed_send_keeps_the_rows_for_the_next_pass(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await enqueue(conn, records("t", 4))
    broker = MemoryBroker()
    relay = OutboxRelay(engine)
    with pytest.raises(ConnectionError):
        await relay.publish_pending(MemoryProducer(broker, fail_sends=1))
    assert await relay.publish_pending(MemoryProducer(broker)) == 4
    # sends before the failure may be published twice (at least once); the last four are the rows in order
    assert [r.value for r in broker.records("t")[-4:]] == [f"v{i}".encode() for i in range(4)]


async def test_one_relay_at_a_time_holds_a_table(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await enqueue(conn, records("t", 2))
    broker = MemoryBroker()
    first, second = OutboxRelay(engine), OutboxRelay(engine)
    async with engine.begin() as conn:  # hold the first relay's lock the way a pass in flight does
        key = first._lock_key
        assert await conn.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key})
        assert await second.publish_pending(MemoryProducer(broker)) == 0
    assert await second.publish_pending(MemoryProducer(broker)) == 2
    assert len(broker.records("t")) == 2


async def test_a_row_the_broker_refuses_is_set_aside_with_its_reason_and_the_rest_published(
    engine: AsyncEngine, kafka_settings: KafkaSettings, topics
) -> None:
    """A 2 MB record (a lifecycle event with a huge display name, say) can never be sent: before, the
    relay raised MessageSizeTooLargeError on every pass and nothing after it was ever published."""
    topic = await topics("outbox-big")
    huge = OutRecord(topic, b"x" * (2 * 1024 * 1024), key=b"k1", headers=[("ce_id", b"huge")])
    async with engine.begin() as conn:
        await enqueue(conn, records(topic, 2))
        await enqueue(conn, [huge])
        await enqueue(conn, records(topic, 2, start=2))
    producer = make_producer(kafka_settings, client_id="outbox-set-aside")
    await producer.start()
    try:
        relay = OutboxRelay(engine)
        assert await relay.drain(producer) == 5
        assert relay.set_aside == 1
        async with engine.connect() as conn:
            [aside] = await set_aside_rows(conn)
            assert await conn.scalar(text("SELECT count(*) FROM outbox")) == 0
        assert aside["topic"] == topic and aside["size"] == 2 * 1024 * 1024
        assert aside["reason"].startswith("MessageSizeTooLargeError")
        got = await read_all(kafka_settings, topic, expect=4)
        # every other row reached Kafka, in order (the pass's earlier rows may come twice: at least once)
        values = [r.value for r in got]
        assert sorted(set(values)) == [f"v{i}".encode() for i in range(4)]
        assert values[-2:] == [b"v2", b"v3"]

        # Once the cause is fixed, the row goes back at the end of the outbox, bytes and headers intact.
        async with engine.begin() as conn:
            assert await replay_set_aside(conn, [aside["id"]]) == 1
            assert await set_aside_rows(conn) == []
            back = (await conn.execute(text("SELECT topic, value, headers FROM outbox"))).one()
        assert back.topic == topic and bytes(back.value) == huge.value
        assert relay.set_aside == 1
    finally:
        await producer.stop()


async def test_too_many_refusals_in_a_row_stop_the_relay_loudly(engine: AsyncEngine) -> None:
    """A fault of every row (a forbidden topic, a wrong ACL) must not empty the outbox into set-aside."""
    async with engine.begin() as conn:
        await enqueue(conn, records("t", 5))

    class Refusing:
        async def send(self, *a: object, **kw: object) -> object:
            raise ValueError("this producer refuses every record")

    relay = OutboxRelay(engine, max_consecutive_set_aside=2)
    with pytest.raises(SetAsideLimitExceeded):
        await relay.publish_pending(Refusing())
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM outbox")) == 5
        assert await set_aside_rows(conn) == []


class FailingAt:
    """A producer whose `at`-th send fails in delivery (the others are acknowledged): what a pass
    meets when one partition's leader goes away during a broker restart."""

    def __init__(self, broker: MemoryBroker, at: int, exc: BaseException) -> None:
        self.inner = MemoryProducer(broker)
        self.at, self.exc, self.sends = at, exc, 0

    async def send(self, *a: object, **kw: object) -> object:
        self.sends += 1
        if self.sends == self.at:
            failed: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            failed.set_exception(self.exc)
            return failed
        return await self.inner.send(*a, **kw)  # type: ignore[arg-type]


async def test_a_pass_that_fails_part_way_publishes_no_acknowledged_row_again(engine: AsyncEngine) -> None:
    """A broker restart made one send of a pass fail (LeaderNotAvailable) after the others were
    acknowledged; the whole pass was sent again, so every other order and lifecycle event of it
    reached Kafka twice (the fault suite's 'orders issued twice' in a rolling restart)."""
    from aiokafka.errors import LeaderNotAvailableError

    async with engine.begin() as conn:
        await enqueue(conn, records("t", 5))
    broker = MemoryBroker()
    relay = OutboxRelay(engine)
    with pytest.raises(LeaderNotAvailableError):
        await relay.publish_pending(FailingAt(broker, 3, LeaderNotAvailableError()))
    async with engine.connect() as conn:  # only the row not acknowledged is left
        assert await conn.scalar(text("SELECT count(*) FROM outbox")) == 1
    assert await relay.drain(MemoryProducer(broker)) == 1
    values = [r.value for r in broker.records("t")]
    assert sorted(values) == [f"v{i}".encode() for i in range(5)]  # each once
    assert relay.published == 5


async def test_a_refused_row_among_acknowledged_ones_is_set_aside_and_the_rest_sent_once(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        await enqueue(conn, records("t", 4))
    broker = MemoryBroker()
    relay = OutboxRelay(engine)
    assert await relay.publish_pending(FailingAt(broker, 2, ValueError("not sendable"))) == 4
    assert relay.set_aside == 1
    assert [r.value for r in broker.records("t")] == [b"v0", b"v2", b"v3"]
    async with engine.connect() as conn:
        [aside] = await set_aside_rows(conn)
        assert aside["reason"].startswith("ValueError")
