"""GlobalTable on the real broker: catch up with a compacted topic, then follow live changes."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from onegrid.kafka.table import GlobalTable
from registry_client import RegistryView


async def test_catch_up_then_follow(kafka_settings, topics) -> None:
    topic = await topics("table", partitions=2, compacted=True)
    p = AIOKafkaProducer(**kafka_settings.client_kwargs())
    await p.start()
    for i in range(50):
        await p.send(topic, b'{"code": "%d"}' % i, key=b"department:d%d" % i)
    await p.send(topic, None, key=b"department:d7")  # tombstone
    await p.flush()
    view = RegistryView()
    table = GlobalTable(kafka_settings, topic, view.handle)
    assert await table.catch_up() == 51
    assert len(view.all("department")) == 49 and view.get("department", "d7") is None
    task = asyncio.create_task(table.follow())
    await p.send_and_wait(topic, b'{"code": "new"}', key=b"department:new")
    await p.stop()
    for _ in range(100):
        if view.get("department", "new"):
            break
        await asyncio.sleep(0.1)
    table.stop()
    await task
    assert view.get("department", "new") == {"code": "new"}


async def test_a_table_only_caught_up_closes_its_consumer(kafka_settings, topics) -> None:
    topic = await topics("table-close", partitions=1, compacted=True)
    p = AIOKafkaProducer(**kafka_settings.client_kwargs())
    await p.start()
    await p.send_and_wait(topic, b'{"code": "a"}', key=b"department:a")
    await p.stop()
    table = GlobalTable(kafka_settings, topic, RegistryView().handle)
    assert await table.catch_up() == 1
    consumer = await table._start()
    await table.close()
    assert consumer._closed  # aiokafka's own flag: stop() ran (no "Unclosed AIOKafkaConsumer" at exit)


async def test_sync_waits_for_records_committed_behind_another_producers_open_transaction(
    kafka_settings, topics
) -> None:
    """A handover's sync must see everything the fenced owner committed. Reading committed records
    stops at the first offset of any transaction still open (the last stable offset), whoever opened
    it: on a topic several producers write (a changelog shared by two stages, `cases.v1`), a dead
    instance's open transaction hid the last commit of the partition's previous owner from its new
    owner, which then went on from the committed input offset without that state (a record held for
    its turn was lost). So sync reads up to the end of every record written, resolved or not."""
    topic = await topics("table-behind-open", partitions=1, compacted=True)
    view = RegistryView()
    table = GlobalTable(kafka_settings, topic, view.handle, client_id="table-behind-open")
    await table.catch_up()
    follow = asyncio.create_task(table.follow())

    def producer(tid: str) -> AIOKafkaProducer:
        return AIOKafkaProducer(transactional_id=tid, **kafka_settings.client_kwargs())

    dead, owner = producer(f"{topic}-dead"), producer(f"{topic}-owner")
    await dead.start()
    await owner.start()
    await dead.begin_transaction()  # another stage's instance, killed mid-transaction
    await dead.send_and_wait(topic, b'{"code": "x"}', key=b"department:x")
    async with owner.transaction():  # the partition's previous owner: its last commit
        await owner.send_and_wait(topic, b'{"code": "y"}', key=b"department:y")
    await owner.stop()

    synced = asyncio.create_task(table.sync(timeout_s=60))
    await asyncio.sleep(1.0)
    assert not synced.done(), "sync returned with the previous owner's last commit unread"
    # The dead producer's transaction ends when its own partition's next owner fences it.
    fencer = producer(f"{topic}-dead")
    await fencer.start()
    await synced
    assert view.get("department", "y") == {"code": "y"} and view.get("department", "x") is None
    await fencer.stop()
    await dead.stop()
    table.stop()
    await follow


async def test_written_ends_asked_twice_at_once_start_one_consumer(
    kafka_settings, topics, monkeypatch
) -> None:
    """The legacy loop's handover and the correlation stage's both sync the same tables, at once after
    a rebalance: each used to start a consumer of its own and one was never stopped."""
    import onegrid.kafka.admin as admin

    topic = await topics("written-ends", partitions=2)
    made: list[AIOKafkaConsumer] = []

    class Counted(AIOKafkaConsumer):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(admin, "AIOKafkaConsumer", Counted)
    ends = admin.WrittenEnds(kafka_settings, client_id="written-ends")
    tps = [TopicPartition(topic, p) for p in range(2)]
    first, second = await asyncio.gather(ends.of(tps), ends.of(tps))
    assert first == second == {tp: 0 for tp in tps}
    await ends.close()
    assert len(made) == 1 and made[0]._closed


async def heard_of(table: GlobalTable, tp: TopicPartition, end: int) -> None:
    """Until the table's consumer has had a fetch response saying `tp` is committed up to `end`."""
    c = await table._start()
    for _ in range(300):
        if c.last_stable_offset(tp) == end:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{tp} never known committed to {end}: {c.last_stable_offset(tp)}")


async def test_a_table_is_current_only_once_everything_committed_is_applied(kafka_settings, topics) -> None:
    """The registry seeded after a service started arrives while it already runs: a record placed
    against a view still applying the divisions, and not yet the grids, stays at the community for
    good (the grid worker never sees the case). `current` says whether the table holds everything
    the broker reported committed in its latest fetch response; `until_current` waits for it."""
    topic = await topics("table-current", partitions=2, compacted=True)
    view = RegistryView()
    tokens = asyncio.Semaphore(0)  # one per batch the test lets the table apply
    entered: list[list[tuple[int, int]]] = []

    async def slow(records):  # type: ignore[no-untyped-def]
        entered.append([(r.partition, r.offset) for r in records])
        await tokens.acquire()  # a batch being applied (the view's index rebuilt meanwhile)
        return await view.handle(records)

    table = GlobalTable(kafka_settings, topic, slow, client_id="table-current")
    assert not table.current  # nothing read yet
    await table.catch_up()
    assert table.current  # an empty topic, read to its end
    follow = asyncio.create_task(table.follow())
    p = AIOKafkaProducer(**kafka_settings.client_kwargs())
    await p.start()
    await p.send_and_wait(topic, b'{"code": "a"}', key=b"division:a", partition=0)
    for _ in range(300):
        if entered:
            break
        await asyncio.sleep(0.1)
    assert entered == [[(0, 0)]]
    assert not table.current, "current while a fetched batch is being applied"
    assert not await table.until_current(0.3)
    # A caller's target is what was committed when it asked: what comes after does not hold it up.
    asked_before_the_grids = asyncio.create_task(table.until_current(30))

    # More committed while the first batch is applied: once the consumer has heard of them (a
    # fetch response's last stable offset), the table is behind them until they are applied too.
    # (In one transaction: committed at once, so one fetch response tells of all three.)
    t = AIOKafkaProducer(transactional_id=f"{topic}-grids", **kafka_settings.client_kwargs())
    await t.start()
    async with t.transaction():
        for i in range(3):
            await t.send(topic, b'{"code": "%d"}' % i, key=b"grid:%d" % i, partition=1)
    await t.stop()
    await heard_of(table, TopicPartition(topic, 1), 4)  # three records and the commit marker
    assert table.more_known()  # beyond the batch being applied: a burst's follow-up work can wait
    tokens.release()  # the divisions' batch is applied; the grids are not
    assert await asked_before_the_grids
    assert not table.current
    assert not await table.until_current(0.5)
    assert view.get("division", "a") == {"code": "a"} and not view.all("grid")
    tokens.release()
    assert await table.until_current(30)
    assert len(view.all("grid")) == 3 and [x for b in entered[1:] for x in b] == [(1, 0), (1, 1), (1, 2)]
    assert not table.more_known()
    await p.stop()
    table.stop()
    await follow


async def test_a_table_only_caught_up_waits_for_nothing_newer(kafka_settings, topics) -> None:
    """A table caught up and never followed applies nothing more (a tool's or a test's view): a
    record committed since, which its consumer's fetcher has heard of, is not waited for."""
    topic = await topics("table-not-followed", partitions=1, compacted=True)
    view = RegistryView()
    table = GlobalTable(kafka_settings, topic, view.handle, client_id="table-not-followed")
    await table.catch_up()
    p = AIOKafkaProducer(**kafka_settings.client_kwargs())
    await p.start()
    await p.send_and_wait(topic, b'{"code": "late"}', key=b"department:late")
    await p.stop()
    await heard_of(table, TopicPartition(topic, 0), 1)
    assert await table.until_current(1.0) and table.current
    assert view.get("department", "late") is None
    await table.close()
