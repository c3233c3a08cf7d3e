"""onegrid.outbox on real PostgreSQL and Kafka: only committed rows are published, in order, with their
headers, each exactly once: a failed send aborts its pass for the next to publish; a pass Kafka
committed is never sent again, whether the database died before its delete or the instance died
mid-transaction; a row the broker refuses for good is set aside with the reason and the relay goes
on; one relay at a time holds a table."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from support.plans import plan_nodes
from support.waiting import wait_until

from onegrid.db import make_engine
from onegrid.kafka import OutRecord
from onegrid.kafka.memory import MemoryBroker, MemoryRelayLink
from onegrid.kafka.policy import is_transient
from onegrid.outbox import (
    KafkaRelayLink,
    OutboxRelay,
    SetAsideLimitExceeded,
    enqueue,
    outbox_ddl,
    pass_statements,
    replay_set_aside,
    set_aside_ddl,
    set_aside_rows,
)
from onegrid.settings import KafkaSettings
from onegrid.topics import OUTBOX_PASSES

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


def relay_of(engine: AsyncEngine, scope: str, **kw: Any) -> OutboxRelay:
    """A relay of the test's own table: its lock, transactional id and group are the test's."""
    return OutboxRelay(engine, scope=scope, standby_s=0.0, **kw)


def new_scope() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


async def pending(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM outbox")) or 0)


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

    relay = relay_of(engine, new_scope(), batch_size=3)
    try:
        link = KafkaRelayLink(kafka_settings, client_id="outbox-test")
        assert await relay.drain(link) == 8
        assert await relay.drain(link) == 0
        assert await link.last_pass(relay.transactional_id) == 3  # 3 + 3 + 2 rows
    finally:
        await relay.close()
    got = await read_all(kafka_settings, topic, expect=8)
    assert [r.value for r in got] == [f"v{i}".encode() for i in range(7)] + [None]
    assert [dict(r.headers)["ce_id"] for r in got[:7]] == [f"id-{i}".encode() for i in range(7)]
    assert await pending(engine) == 0
    entries = [
        json.loads(r.value)
        for r in await read_all(kafka_settings, OUTBOX_PASSES, expect=1)
        if r.key == relay.transactional_id.encode()
    ]
    assert [(e["pass"], e["records"]) for e in entries] == [(1, 3), (2, 3), (3, 2)]


async def test_a_failed_send_publishes_nothing_of_its_pass_and_the_next_pass_all_of_it(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        await enqueue(conn, records("t", 4))
    broker = MemoryBroker()
    relay = relay_of(engine, new_scope())
    failing = MemoryRelayLink(broker, producers=lambda p: FailingAt(p, 2, ConnectionError("broker away")))
    with pytest.raises(ConnectionError):
        await relay.publish_pending(failing)
    assert broker.records("t") == [] and await pending(engine) == 4  # the pass was aborted
    assert await relay.publish_pending(MemoryRelayLink(broker)) == 4
    assert [r.value for r in broker.records("t")] == [f"v{i}".encode() for i in range(4)]  # each once
    await relay.close()


async def test_one_relay_at_a_time_holds_a_table(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await enqueue(conn, records("t", 2))
    broker = MemoryBroker()
    link = MemoryRelayLink(broker)
    scope = new_scope()
    first, second = relay_of(engine, scope), relay_of(engine, scope)
    assert await first.publish_pending(link) == 2 and first.active
    async with engine.begin() as conn:
        await enqueue(conn, records("t", 1, start=2))
    assert await second.publish_pending(link) == 0 and not second.active  # stands by
    await first.close()  # the instance goes away: its session, and the lock with it
    assert await second.publish_pending(link) == 1 and second.active
    assert [r.value for r in broker.records("t")] == [b"v0", b"v1", b"v2"]
    await second.close()


async def test_a_commit_in_any_session_wakes_the_relay_at_once(engine: AsyncEngine) -> None:
    """The relay of one instance waited out its idle interval for rows another instance's desk had
    committed (only a commit in its own process woke it): the writers notify, the relay listens."""
    broker = MemoryBroker()
    async with engine.connect() as conn:  # the relay listens on the channel of its own schema
        schema = await conn.scalar(text("SELECT current_schema()"))
    relay = OutboxRelay(engine, scope=schema, idle_s=600.0, lease_s=6000.0)
    task = asyncio.create_task(relay.run(MemoryRelayLink(broker)))
    try:
        await wait_until(lambda: relay.active, interval_s=0.05, what="the relay taking its table up")
        async with engine.begin() as conn:  # another instance's transaction: no wake() in this one
            await enqueue(conn, records("t", 2))
        # well inside the idle interval: only the commit's notification can have woken it
        await wait_until(
            lambda: len(broker.records("t")) == 2, timeout_s=30, interval_s=0.05, what="the rows"
        )
    finally:
        relay.stop()
        await task
    assert [r.value for r in broker.records("t")] == [b"v0", b"v1"]
    assert not relay.active


async def test_a_pass_whose_delete_never_committed_is_not_published_again(
    engine: AsyncEngine, kafka_settings: KafkaSettings, topics
) -> None:
    """PostgreSQL went down between the broker's commit of a pass and the delete of its rows: the
    relay sent the pass again once the database was back, and dispatch's orders and lifecycle
    events reached Kafka twice (the fault suite's 'orders issued twice' after a database kill)."""
    topic = await topics("outbox-db-gone")
    async with engine.begin() as conn:
        await enqueue(conn, records(topic, 4))
    scope = new_scope()
    relay = relay_of(engine, scope)

    class DatabaseDiesAfterCommit(KafkaRelayLink):
        def producer(self, transactional_id: str) -> Any:
            return Hooked(super().producer(transactional_id), after_commit=kill_relay_session)

    async def kill_relay_session() -> None:
        key = relay._lock_key  # a bigint advisory key shows in pg_locks as its two 32-bit halves
        async with engine.connect() as conn:  # what a database restart does to the relay's session
            killed = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND granted AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1"
                ),
                {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
            )
        assert killed == 1

    with pytest.raises(Exception) as failed:
        await relay.publish_pending(DatabaseDiesAfterCommit(kafka_settings, client_id="outbox-db-gone"))
    assert is_transient(failed.value), failed.value
    assert not relay.active and await pending(engine) == 4  # published, not yet deleted

    link = KafkaRelayLink(kafka_settings, client_id="outbox-db-back")
    async with engine.begin() as conn:
        await enqueue(conn, records(topic, 1, start=4))
    try:
        assert await relay.drain(link) == 1  # takes the table up again: the four were published
    finally:
        await relay.close()
    got = await read_all(kafka_settings, topic, expect=5)
    assert [r.value for r in got] == [f"v{i}".encode() for i in range(5)]
    assert await pending(engine) == 0


async def test_a_relay_that_died_mid_transaction_is_fenced_and_its_pass_published_once_by_the_next(
    engine: AsyncEngine, kafka_settings: KafkaSettings, topics
) -> None:
    """An instance killed with a pass's records sent but not committed: the next relay's producer
    aborts that transaction (fencing), and the claimed rows go out again, once, in its own."""
    topic = await topics("outbox-killed")
    async with engine.begin() as conn:
        await enqueue(conn, records(topic, 3))
    scope = new_scope()
    dying, next_one = relay_of(engine, scope), relay_of(engine, scope)
    stuck = asyncio.Event()

    class HangsBeforeCommit(KafkaRelayLink):
        def producer(self, transactional_id: str) -> Any:
            return Hooked(super().producer(transactional_id), before_offsets=hang)

    async def hang() -> None:
        stuck.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(
        dying.publish_pending(HangsBeforeCommit(kafka_settings, client_id="outbox-dying"))
    )
    await asyncio.wait_for(stuck.wait(), 30)
    assert dying._active is not None
    await dying._active.conn.invalidate()  # the instance is gone: its session ends, the lock is free
    link = KafkaRelayLink(kafka_settings, client_id="outbox-next")
    try:
        assert await next_one.drain(link) == 3
    finally:
        await next_one.close()
        task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 30)
    got = await read_all(kafka_settings, topic, expect=3)
    assert [r.value for r in got] == [b"v0", b"v1", b"v2"]
    assert await pending(engine) == 0


@pytest.mark.parametrize("where", ["between passes", "inside a claim"])
async def test_a_relay_that_stalls_without_dying_lets_go_of_its_table_after_the_lease(
    engine: AsyncEngine, kafka_settings: KafkaSettings, topics, where: str
) -> None:
    """An instance stopped (SIGSTOP, a frozen VM) keeps its connection open, and with it the session
    that holds the table's lock: every other instance stood by for as long as it stayed stopped, and
    no outbox row of the service was published. The server ends the idle session after the lease;
    another instance takes the table up, and the stalled one, when it wakes, stands by."""
    topic = await topics(f"outbox-stall-{where.split()[0]}")
    async with engine.begin() as conn:
        await enqueue(conn, records(topic, 2))
    scope = new_scope()
    stalled, other = relay_of(engine, scope, lease_s=2.0), relay_of(engine, scope, lease_s=2.0)
    link = KafkaRelayLink(kafka_settings, client_id="outbox-stall")
    try:
        assert await stalled.publish_pending(link) == 2
        assert stalled._active is not None
        if where == "inside a claim":  # stopped holding the row locks of a claim
            await stalled._active.conn.begin()
            await stalled._active.conn.execute(text("SELECT id FROM outbox FOR UPDATE"))
        async with engine.begin() as conn:
            await enqueue(conn, records(topic, 2, start=2))
        # the stalled relay makes no call from here on; the other tries as a standby does
        loop = asyncio.get_running_loop()
        started, deadline = loop.time(), loop.time() + 30
        while not await other.publish_pending(link):
            assert loop.time() < deadline, "the table stayed with the stalled relay"
            await asyncio.sleep(0.2)
        assert loop.time() - started >= 1.0  # not before the lease ran out
        assert other.active

        # The stalled instance wakes: its session is gone (so its lock), and it stands by.
        with pytest.raises(Exception) as woke:
            await stalled._active.conn.execute(text("SELECT 1"))
        assert is_transient(woke.value), woke.value
        await stalled.close()
        async with engine.begin() as conn:
            await enqueue(conn, records(topic, 1, start=4))
        assert await stalled.publish_pending(link) == 0 and not stalled.active
        assert await other.drain(link) == 1
    finally:
        await stalled.close()
        await other.close()
    got = await read_all(kafka_settings, topic, expect=5)
    assert [r.value for r in got] == [f"v{i}".encode() for i in range(5)]  # each once, in order
    assert await pending(engine) == 0


async def test_a_lease_not_well_above_the_idle_interval_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="lease_s"):
        OutboxRelay(engine, idle_s=1.0, lease_s=2.0)


async def test_a_row_the_broker_refuses_is_set_aside_with_its_reason_and_the_rest_published_once(
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
    relay = relay_of(engine, new_scope())
    try:
        assert await relay.drain(KafkaRelayLink(kafka_settings, client_id="outbox-set-aside")) == 5
        assert relay.set_aside == 1
        async with engine.connect() as conn:
            [aside] = await set_aside_rows(conn)
            assert await conn.scalar(text("SELECT count(*) FROM outbox")) == 0
        assert aside["topic"] == topic and aside["size"] == 2 * 1024 * 1024
        assert aside["reason"].startswith("MessageSizeTooLargeError")
        got = await read_all(kafka_settings, topic, expect=4)
        # every other row reached Kafka once, in order: the pass with the refused row was aborted
        assert [r.value for r in got] == [f"v{i}".encode() for i in range(4)]

        # Once the cause is fixed, the row goes back at the end of the outbox, bytes and headers intact.
        async with engine.begin() as conn:
            assert await replay_set_aside(conn, [aside["id"]]) == 1
            assert await set_aside_rows(conn) == []
            back = (await conn.execute(text("SELECT topic, value, headers FROM outbox"))).one()
        assert back.topic == topic and bytes(back.value) == huge.value
        assert relay.set_aside == 1
    finally:
        await relay.close()


async def test_too_many_refusals_in_a_row_stop_the_relay_loudly(engine: AsyncEngine) -> None:
    """A fault of every row (a forbidden topic, a wrong ACL) must not empty the outbox into set-aside."""
    async with engine.begin() as conn:
        await enqueue(conn, records("t", 5))
    broker = MemoryBroker()
    refusing = MemoryRelayLink(broker, producers=lambda p: FailingAt(p, range(1, 100), ValueError("refused")))
    relay = relay_of(engine, new_scope(), max_consecutive_set_aside=2)
    with pytest.raises(SetAsideLimitExceeded):
        await relay.publish_pending(refusing)
    assert await pending(engine) == 5 and broker.records("t") == []
    async with engine.connect() as conn:
        assert await set_aside_rows(conn) == []
    assert not relay.active  # it let go of the table: the next call takes it up again


class Hooked:
    """A relay producer with hooks: `before_offsets` runs where the pass's offsets are committed,
    `after_commit` once its transaction committed (a crash's place, or a database's going away)."""

    def __init__(self, inner: Any, *, before_offsets: Any = None, after_commit: Any = None) -> None:
        self.inner, self.before_offsets, self.after_commit = inner, before_offsets, after_commit

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def send_offsets_to_transaction(self, offsets: Any, group_id: str) -> None:
        if self.before_offsets is not None:
            await self.before_offsets()
        await self.inner.send_offsets_to_transaction(offsets, group_id)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self.inner.transaction():
            yield
        if self.after_commit is not None:
            await self.after_commit()


class FailingAt(Hooked):
    """A producer whose sends numbered in `at` fail in delivery (the others are acknowledged): what
    a pass meets when one partition's leader goes away during a broker restart."""

    def __init__(self, inner: Any, at: int | range, exc: BaseException) -> None:
        super().__init__(inner)
        self.at = range(at, at + 1) if isinstance(at, int) else at
        self.exc, self.sends = exc, 0

    async def send(self, *a: object, **kw: object) -> object:
        self.sends += 1
        if self.sends in self.at:
            failed: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            failed.set_exception(self.exc)
            return failed
        return await self.inner.send(*a, **kw)


async def test_a_pass_that_fails_part_way_publishes_none_of_it_and_the_next_all_of_it_once(
    engine: AsyncEngine,
) -> None:
    """A broker restart made one send of a pass fail (LeaderNotAvailable) after the others were
    acknowledged; the whole pass was sent again, so every other order and lifecycle event of it
    reached Kafka twice (the fault suite's 'orders issued twice' in a rolling restart)."""
    from aiokafka.errors import LeaderNotAvailableError

    async with engine.begin() as conn:
        await enqueue(conn, records("t", 5))
    broker = MemoryBroker()
    relay = relay_of(engine, new_scope())
    failing = MemoryRelayLink(broker, producers=lambda p: FailingAt(p, 3, LeaderNotAvailableError()))
    with pytest.raises(LeaderNotAvailableError):
        await relay.publish_pending(failing)
    assert broker.records("t") == [] and await pending(engine) == 5
    assert await relay.drain(MemoryRelayLink(broker)) == 5
    assert [r.value for r in broker.records("t")] == [f"v{i}".encode() for i in range(5)]  # each once
    assert relay.published == 5
    await relay.close()


async def test_a_refused_row_among_acknowledged_ones_is_set_aside_and_the_rest_sent_once(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        await enqueue(conn, records("t", 4))
    broker = MemoryBroker()
    relay = relay_of(engine, new_scope())
    refusing = MemoryRelayLink(broker, producers=lambda p: FailingAt(p, 2, ValueError("not sendable")))
    assert await relay.publish_pending(refusing) == 1  # set aside; the pass aborted
    assert relay.set_aside == 1 and broker.records("t") == []
    assert await relay.drain(MemoryRelayLink(broker)) == 3
    assert [r.value for r in broker.records("t")] == [b"v0", b"v2", b"v3"]
    async with engine.connect() as conn:
        [aside] = await set_aside_rows(conn)
        assert aside["reason"].startswith("ValueError")
    await relay.close()


async def test_a_pass_claims_and_deletes_its_rows_through_the_primary_key(engine: AsyncEngine) -> None:
    """Statistics taken while the relay was a few thousand rows behind gave the claim a plan that read
    the whole table (a hash join over a sequential scan), and the delete (by pass number, which no
    index covers) always did; an outbox's heap holds every row written since its last vacuum, so on a
    busy one each pass took ~100 ms. Both go by the primary key whatever the statistics say."""
    table = f"outbox_plan_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as conn:
        await conn.execute(text(outbox_ddl(table)))
        await enqueue(conn, records("t", 5000), table=table)
        await conn.execute(text(f"ANALYZE {table}"))
        claim, delete = pass_statements(table)
        claim_plan = await conn.scalar(text("EXPLAIN (FORMAT JSON) " + claim), {"p": 1, "n": 1000})
        delete_plan = await conn.scalar(
            text("EXPLAIN (FORMAT JSON) " + delete), {"ids": list(range(1, 1001))}
        )
    for what, plan in (("claim", claim_plan), ("delete", delete_plan)):
        scans = [n["Node Type"] for n in plan_nodes(plan) if n.get("Relation Name") == table]
        assert scans and "Seq Scan" not in scans, f"the {what} reads {table} by {scans}"
