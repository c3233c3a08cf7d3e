"""The consumer loop's contract, on the in-memory broker (the same scenarios run on real Kafka in
tests/integration/test_pipeline.py; the suite run on both brokers is tests/support/loop_contract.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from contextlib import asynccontextmanager

import pytest
from aiokafka import TopicPartition
from support.waiting import wait_until

from onegrid.kafka import BatchResult, DeadLetter, OutRecord, Record
from onegrid.kafka.loop import ConsumerLoop, LoopConfig
from onegrid.kafka.memory import MemoryBroker, MemoryConsumer, MemoryProducer
from onegrid.kafka.policy import Backpressure, DlqLimitExceeded, TransientError


def upper(records: Sequence[Record]) -> BatchResult:
    return BatchResult(outputs=[OutRecord("out", (r.value or b"").upper(), r.key) for r in records])


def make_loop(
    broker: MemoryBroker, handler, *, eos: bool = False, producer=None, consumer=None, renew=None, **cfg
) -> ConsumerLoop:
    config = LoopConfig(
        group_id="g",
        topics=("in",),
        service="test",
        dlq_topic="dlq",
        quarantine_topic="quarantine",
        exactly_once=eos,
        commit_interval_s=0,
        **cfg,
    )
    return ConsumerLoop(
        consumer=consumer or MemoryConsumer(broker, "g"),
        renew=renew,
        handler=handler,
        producer=producer or MemoryProducer(broker),
        transactional=partition_producers(broker, producer) if eos else None,
        config=config,
    )


def partition_producers(broker: MemoryBroker, given: MemoryProducer | None = None):
    """One transactional producer per input partition (`given` for all, to inject failures)."""
    return lambda tp: given or MemoryProducer(broker, transactional_id=f"g.{tp.topic}.{tp.partition}")


async def run_until(loop: ConsumerLoop, cond, timeout: float = 2.0) -> None:
    task = asyncio.create_task(loop.run())
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if task.done():
            task.result()
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)
    loop.stop()
    await task


@pytest.mark.parametrize("eos", [False, True])
async def test_outputs_then_commits_in_order(eos: bool) -> None:
    broker = MemoryBroker()
    for i in range(50):
        broker.append("in", f"m{i}".encode(), b"k")

    async def handler(rs):
        return upper(rs)

    loop = make_loop(broker, handler, eos=eos, batch_max_records=7)
    await run_until(loop, lambda: len(broker.records("out")) == 50)
    assert [r.value for r in broker.records("out")] == [f"M{i}".encode() for i in range(50)]
    assert broker.committed[("g", ("in", 0))] == 50


@pytest.mark.parametrize("eos", [False, True])
async def test_poison_record_isolated_and_dead_lettered_with_original_bytes(eos: bool) -> None:
    broker = MemoryBroker()
    for i in range(10):
        broker.append("in", b"poison" if i == 4 else f"ok{i}".encode(), b"k", headers=[("h", b"v")])

    async def handler(rs):
        if any(r.value == b"poison" for r in rs):
            raise ValueError("cannot digest")
        return upper(rs)

    loop = make_loop(broker, handler, eos=eos)
    await run_until(loop, lambda: len(broker.records("out")) == 9)
    dlq = broker.records("dlq")
    assert len(dlq) == 1
    assert dlq[0].value == b"poison" and dlq[0].key == b"k"
    headers = dict(dlq[0].headers)
    assert headers["h"] == b"v"  # the original headers are kept
    assert headers["dlq_reason"] == b"unhandled.ValueError"
    assert headers["dlq_offset"] == b"4" and headers["dlq_topic"] == b"in"
    assert b"cannot digest" in headers["dlq_detail"]


async def test_handler_dead_letters_and_quarantine_go_to_their_topics() -> None:
    broker = MemoryBroker()
    broker.append("in", b"bad")
    broker.append("in", b"unmapped")
    broker.append("in", b"good")

    async def handler(rs):
        res = BatchResult()
        for r in rs:
            if r.value == b"bad":
                res.dead_letters.append(DeadLetter(r, "x.bad", "it is bad", "parse", "dlq"))
            elif r.value == b"unmapped":
                res.dead_letters.append(DeadLetter(r, "x.unmapped", "no mapping", "map", "quarantine"))
            else:
                res.outputs.append(OutRecord("out", r.value))
        return res

    loop = make_loop(broker, handler, eos=True)
    await run_until(loop, lambda: broker.committed.get(("g", ("in", 0))) == 3)
    assert [r.value for r in broker.records("dlq")] == [b"bad"]
    q = broker.records("quarantine")
    assert [r.value for r in q] == [b"unmapped"]
    assert dict(q[0].headers)["quarantine_reason"] == b"x.unmapped"


async def test_transient_failures_are_retried_not_dead_lettered() -> None:
    broker = MemoryBroker()
    broker.append("in", b"a")
    calls = 0

    async def handler(rs):
        nonlocal calls
        calls += 1
        if calls < 3:
            raise TransientError("database restarting")
        return upper(rs)

    loop = make_loop(broker, handler)
    await run_until(loop, lambda: len(broker.records("out")) == 1, timeout=5)
    assert calls == 3
    assert broker.records("dlq") == []


@pytest.mark.parametrize("eos", [False, True])
async def test_a_failure_that_does_not_happen_again_dead_letters_nothing(eos: bool) -> None:
    """A record is poison only when its failure happens again. A batch of one record whose handler
    fails once with an error not known as transient (asyncpg's pool, PostgreSQL going down under it)
    and then succeeds was dead-lettered at the first failure: lost from the trail for good."""
    broker = MemoryBroker()
    broker.append("in", b"a")
    calls = 0

    async def handler(rs):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the connection broke under the pool")
        return upper(rs)

    loop = make_loop(broker, handler, eos=eos)
    await run_until(loop, lambda: len(broker.records("out")) == 1, timeout=5)
    assert broker.records("dlq") == []
    assert [r.value for r in broker.records("out")] == [b"A"]


@pytest.mark.parametrize("eos", [False, True])
async def test_a_poison_record_is_dead_lettered_when_its_failure_happens_again(eos: bool) -> None:
    broker = MemoryBroker()
    for v in (b"ok", b"poison", b"ok2"):
        broker.append("in", v)
    runs: list[list[bytes]] = []

    async def handler(rs):
        runs.append([r.value for r in rs])
        if any(r.value == b"poison" for r in rs):
            raise ValueError("cannot digest")
        return upper(rs)

    loop = make_loop(broker, handler, eos=eos)
    await run_until(loop, lambda: broker.committed.get(("g", ("in", 0))) == 3)
    assert [r.value for r in broker.records("dlq")] == [b"poison"]
    assert [r.value for r in broker.records("out")] == [b"OK", b"OK2"]
    # isolated ([ok] succeeds, [ok, poison] fails), then its failure seen again before it is set aside
    assert runs.count([b"ok", b"poison"]) == 2


async def test_failed_transaction_publishes_nothing_and_is_retried() -> None:
    broker = MemoryBroker()
    for i in range(3):
        broker.append("in", f"m{i}".encode())
    producer = MemoryProducer(broker, fail_sends=2)  # the first transaction fails mid-way

    async def handler(rs):
        return upper(rs)

    loop = make_loop(broker, handler, eos=True, producer=producer)
    await run_until(loop, lambda: len(broker.records("out")) == 3, timeout=5)
    assert [r.value for r in broker.records("out")] == [b"M0", b"M1", b"M2"]  # no duplicates


async def test_dlq_guard_stops_the_loop_without_committing_the_batch() -> None:
    broker = MemoryBroker()
    for _ in range(20):
        broker.append("in", b"junk")

    async def handler(rs):
        return BatchResult(dead_letters=[DeadLetter(r, "x.junk", "junk") for r in rs])

    loop = make_loop(broker, handler, dlq_max_consecutive=5)
    with pytest.raises(DlqLimitExceeded):
        await loop.run()
    assert ("g", ("in", 0)) not in broker.committed
    assert broker.records("dlq") == []


async def test_stop_finishes_commits_and_leaves() -> None:
    broker = MemoryBroker()
    broker.append("in", b"a")
    consumer = MemoryConsumer(broker, "g")

    async def handler(rs):
        return upper(rs)

    loop = ConsumerLoop(
        consumer=consumer,
        handler=handler,
        producer=MemoryProducer(broker),
        config=LoopConfig(group_id="g", topics=("in",), service="t", commit_interval_s=3600),
    )
    await run_until(loop, lambda: len(broker.records("out")) == 1)
    # The commit interval had not elapsed: the commit happened on stop.
    assert broker.committed[("g", ("in", 0))] == 1
    assert consumer.stopped


async def test_after_commit_runs_only_for_delivered_batches() -> None:
    broker = MemoryBroker()
    broker.append("in", b"a")
    producer = MemoryProducer(broker, fail_sends=1)  # first delivery attempt fails
    applied: list[bytes] = []
    attempts = 0

    async def handler(rs):
        nonlocal attempts
        attempts += 1
        res = upper(rs)
        res.after_commit.append(lambda: applied.append(rs[0].value))
        return res

    loop = make_loop(broker, handler, eos=True, producer=producer)
    await run_until(loop, lambda: len(broker.records("out")) == 1, timeout=5)
    assert attempts == 2
    assert applied == [b"a"]  # the failed attempt's state change was never applied


@pytest.mark.parametrize("eos", [False, True])
async def test_ticks_call_the_handler_without_records_and_deliver_its_outputs(eos: bool) -> None:
    broker = MemoryBroker()
    ticks = 0

    async def handler(rs):
        nonlocal ticks
        if rs:
            return upper(rs)
        ticks += 1
        return BatchResult(outputs=[OutRecord("out", b"tick%d" % ticks)])

    loop = make_loop(broker, handler, eos=eos, tick_interval_s=0.01)
    await run_until(loop, lambda: ticks >= 3)
    assert [r.value for r in broker.records("out")][:3] == [b"tick1", b"tick2", b"tick3"]
    assert ("g", ("in", 0)) not in broker.committed  # a tick commits no offsets


# -- issue 13.6: error handling ------------------------------------------------------------------


async def test_a_retried_batch_counts_once_towards_the_dlq_limit() -> None:
    broker = MemoryBroker()
    broker.append("in", b"junk")
    broker.append("in", b"good")

    async def handler(rs):
        res = BatchResult()
        for r in rs:
            if r.value == b"junk":
                res.dead_letters.append(DeadLetter(r, "x.junk", "junk"))
            else:
                res.outputs.append(OutRecord("out", r.value))
        return res

    # The first delivery fails (transient): the batch is retried, its one dead letter counts once.
    loop = make_loop(broker, handler, producer=MemoryProducer(broker, fail_sends=1), dlq_max_consecutive=2)
    await run_until(loop, lambda: broker.committed.get(("g", ("in", 0))) == 2, timeout=5)
    assert [r.value for r in broker.records("dlq")] == [b"junk"]
    assert loop._guard.consecutive == 0


class EvictedConsumer(MemoryConsumer):
    """The group moved on without this member: its next commit is refused once."""

    refusals = 1
    refusal: type[Exception]

    async def commit(self, offsets):
        if self.refusals:
            self.refusals -= 1
            raise self.refusal("the group has already rebalanced")
        await super().commit(offsets)


def _evicted(broker: MemoryBroker, refusal: type[Exception]) -> EvictedConsumer:
    consumer = EvictedConsumer(broker, "g")
    consumer.refusal = refusal
    return consumer


# CommitFailedError: the group rebalanced without this member. IllegalStateError: aiokafka's own
# assignment is gone while the loop still holds the partitions, e.g. a pattern subscription matched
# a new topic (a broker restarted, a topic created) and the rebalance it starts has not revoked yet.
@pytest.mark.parametrize("refusal", ["CommitFailedError", "IllegalStateError"])
async def test_a_commit_refused_after_eviction_does_not_kill_the_loop(refusal: str) -> None:
    import aiokafka.errors

    broker = MemoryBroker()
    broker.append("in", b"a")

    async def handler(rs):
        return upper(rs)

    loop = ConsumerLoop(
        consumer=_evicted(broker, getattr(aiokafka.errors, refusal)),
        handler=handler,
        producer=MemoryProducer(broker),
        config=LoopConfig(group_id="g", topics=("in",), service="t", commit_interval_s=0),
    )
    task = asyncio.create_task(loop.run())
    while not broker.records("out"):
        assert not task.done(), task
        await asyncio.sleep(0.01)
    broker.append("in", b"b")  # the loop goes on after the refused commit
    while len(broker.records("out")) < 2:
        assert not task.done(), task
        await asyncio.sleep(0.01)
    loop.stop()
    await task
    assert broker.committed[("g", ("in", 0))] == 2


@pytest.mark.parametrize("eos", [False, True])
async def test_retries_pause_the_partitions_and_keep_polling_so_a_revoke_never_waits(eos: bool) -> None:
    broker = MemoryBroker()
    broker.append("in", b"a")
    calls = 0

    async def handler(rs):
        nonlocal calls
        calls += 1
        raise Backpressure("the sink is full")

    loop = make_loop(broker, handler, eos=eos)
    consumer = loop._consumer
    task = asyncio.create_task(loop.run())
    await wait_until(lambda: calls >= 3, interval_s=0.01)
    polls = consumer.polls
    await wait_until(
        lambda: consumer.polls >= polls + 3, interval_s=0.01
    )  # polling goes on between the retries...
    assert consumer.paused() == {("in", 0)}  # ...with the partition paused
    # A rebalance takes the partition away while the batch is still refused: the revoke returns at
    # once (a hang here is the defect) and the batch is dropped, not committed by this instance.
    await asyncio.wait_for(consumer.rebalance(set()), 5)
    called = calls
    for _ in range(20):
        await asyncio.sleep(0.02)
    assert calls == called  # the revoked partition's batch is not retried any more
    loop.stop()
    await task
    assert ("g", ("in", 0)) not in broker.committed
    assert broker.records("out") == []


# -- issue 13.3: fencing ---------------------------------------------------------------------------


async def test_a_stale_owner_is_fenced_and_the_new_owner_does_the_work_once() -> None:
    broker = MemoryBroker()
    for i in range(5):
        broker.append("in", f"m{i}".encode())
    stalled, release = asyncio.Event(), asyncio.Event()

    async def stalling(rs):
        stalled.set()
        await release.wait()
        return upper(rs)

    async def normal(rs):
        return upper(rs)

    old = make_loop(broker, stalling, eos=True)
    old_task = asyncio.create_task(old.run())
    await stalled.wait()
    # The group gives the partition to another instance (the stale one was evicted, it doesn't know).
    new = make_loop(broker, normal, eos=True)
    await run_until(new, lambda: len(broker.records("out")) == 5)
    release.set()
    old.stop()
    await old_task
    assert [r.value for r in broker.records("out")] == [b"M0", b"M1", b"M2", b"M3", b"M4"]
    assert broker.committed[("g", ("in", 0))] == 5
    assert ("in", 0) in old._fenced


async def test_records_fetched_before_a_revoke_are_dropped_not_processed() -> None:
    broker = MemoryBroker(partitions=2)
    broker.append("in", b"p0", partition=0)
    broker.append("in", b"p1", partition=1)
    seen: list[bytes] = []
    first = asyncio.Event()
    go_on = asyncio.Event()

    async def handler(rs):
        if not first.is_set():
            first.set()
            await go_on.wait()
        seen.extend(r.value for r in rs)
        return upper(rs)

    loop = make_loop(broker, handler, eos=True)
    consumer = loop._consumer
    task = asyncio.create_task(loop.run())
    await first.wait()  # partition 0's batch is in the handler, partition 1's is waiting
    await asyncio.wait_for(consumer.rebalance(set()), 5)  # both revoked meanwhile
    go_on.set()
    for _ in range(20):
        await asyncio.sleep(0.01)
    loop.stop()
    await task
    assert seen == [b"p0"]  # the queued batch of partition 1 was never handled
    assert broker.records("out") == [] and broker.committed == {}


# -- issue 13.4: poison isolation keeps dependent records together ----------------------------


@pytest.mark.parametrize("eos", [False, True])
async def test_a_poison_record_splits_the_batch_and_dependent_records_stay_together(eos: bool) -> None:
    """[Alert, Update of it, poison, Update of it again]: the first Update is handled with its Alert
    (same batch), the poison is dead-lettered, the last Update sees the committed Alert."""
    broker = MemoryBroker()
    for v in (b"alert", b"update:alert", b"poison", b"update:alert"):
        broker.append("in", v)
    committed_state: set[bytes] = set()

    async def handler(rs):
        seen = set(committed_state)
        res = BatchResult()
        for r in rs:
            if r.value == b"poison":
                raise ValueError("cannot digest")
            if r.value.startswith(b"update:") and r.value[7:] not in seen:
                res.dead_letters.append(DeadLetter(r, "unknown_reference", "no alert", "map", "quarantine"))
                continue
            seen.add(r.value)
            res.outputs.append(OutRecord("out", r.value.upper()))
        new = seen - committed_state
        res.after_commit.append(lambda: committed_state.update(new))
        return res

    loop = make_loop(broker, handler, eos=eos)
    await run_until(loop, lambda: broker.committed.get(("g", ("in", 0))) == 4)
    assert broker.records("quarantine") == []
    assert [r.value for r in broker.records("out")] == [b"ALERT", b"UPDATE:ALERT", b"UPDATE:ALERT"]
    assert [r.value for r in broker.records("dlq")] == [b"poison"]


async def test_a_member_given_no_partition_is_ready_as_a_standby() -> None:
    """More instances than partitions (a one-partition changelog read by a group of two): the member
    the group gives nothing must still be ready, or a second instance never passes /readyz."""
    broker = MemoryBroker(partitions=1)
    loop = make_loop(broker, upper)
    task = asyncio.create_task(loop.run())
    await wait_until(lambda: loop.running, interval_s=0.01)
    await loop._consumer.rebalance(set())  # type: ignore[attr-defined]
    await wait_until(lambda: loop.ready, interval_s=0.01)
    assert loop.assigned == set()
    loop.stop()
    await task


def exactly_once_loop(broker: MemoryBroker, prepare) -> tuple[ConsumerLoop, MemoryConsumer]:  # type: ignore[no-untyped-def]
    """An exactly-once loop of group "g" on "in" (`upper` as handler) with `prepare`, and its consumer."""

    async def handler(records):  # type: ignore[no-untyped-def]
        return upper(records)

    config = LoopConfig(
        group_id="g", topics=("in",), service="test", dlq_topic="dlq", quarantine_topic="quarantine",
        exactly_once=True, commit_interval_s=0,
    )  # fmt: skip
    consumer = MemoryConsumer(broker, "g")
    loop = ConsumerLoop(
        consumer=consumer,
        handler=handler,
        producer=MemoryProducer(broker),
        transactional=partition_producers(broker),
        config=config,
        prepare=prepare,
    )
    return loop, consumer


async def test_the_assignment_callback_returns_before_producers_start_and_state_catches_up() -> None:
    """Starting a partition's producer and catching its state up (`prepare`) can take longer than the
    group's rebalance timeout; done inside the assignment callback, the member loses its membership
    and the group rebalances again and again. The callback must return at once; the partition is
    taken up in the loop's next round."""
    broker = MemoryBroker(partitions=1)
    broker.append("in", b"a", key=b"k")
    caught_up = asyncio.Event()

    async def prepare(tp) -> None:
        await caught_up.wait()

    loop, consumer = exactly_once_loop(broker, prepare)
    task = asyncio.create_task(loop.run())
    await wait_until(lambda: loop.running, interval_s=0.01)
    tp = next(iter(consumer.assignment()))
    await asyncio.wait_for(consumer.rebalance({tp}), 1.0)  # returns while prepare still waits
    assert loop.joined and tp not in loop.assigned
    caught_up.set()
    await wait_until(lambda: [r.value for r in broker.records("out")] == [b"A"], interval_s=0.01)
    assert tp in loop.assigned
    loop.stop()
    await task


async def test_every_newly_assigned_partition_is_fenced_before_any_is_prepared() -> None:
    """A `prepare` that catches a shared state topic up waits for every transaction open on it; a
    dead owner's transaction on another newly assigned partition ends only when that partition's
    producer fences it. Taken up one at a time, the first `prepare` waited for the second fence
    (until the coordinator timed the transaction out)."""
    broker = MemoryBroker(partitions=3)
    for i in range(3):
        broker.append("in", f"m{i}".encode(), key=f"k{i}".encode())
    fenced_when_prepared: dict[int, set[str]] = {}

    async def prepare(tp) -> None:
        fenced_when_prepared[tp.partition] = set(broker.epochs)

    loop, _ = exactly_once_loop(broker, prepare)
    await run_until(loop, lambda: len(loop.assigned) == 3)
    every = {f"g.in.{p}" for p in range(3)}
    assert fenced_when_prepared == {p: every for p in range(3)}


class CoordinationBreaks(MemoryConsumer):
    """aiokafka's group coordination routine dies on its own assertion (aio-libs/aiokafka#796, seen
    after a broker SIGKILL); from then on every getmany raises the same error."""

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None):  # type: ignore[no-untyped-def]
        if self.polls >= 1:
            from aiokafka.errors import KafkaError

            raise KafkaError("Unexpected error during coordination AssertionError()")
        return await super().getmany(timeout_ms=timeout_ms, max_records=max_records)


@pytest.mark.parametrize("eos", [False, True])
async def test_a_broken_group_coordination_rejoins_with_a_fresh_consumer(eos: bool) -> None:
    """Before, the loop died with the consumer (audit's wire tap stopped for good after a broker
    SIGKILL: records missing from the trail until the process was restarted by hand)."""
    broker = MemoryBroker()
    for i in range(20):
        broker.append("in", f"m{i}".encode(), b"k")

    async def handler(rs):
        return upper(rs)

    broken = CoordinationBreaks(broker, "g")
    fresh: list[MemoryConsumer] = []

    def renew() -> MemoryConsumer:
        fresh.append(MemoryConsumer(broker, "g"))
        return fresh[-1]

    loop = make_loop(broker, handler, eos=eos, batch_max_records=5, consumer=broken, renew=renew)
    for i in range(20, 30):  # more arrive after the first poll, read by the fresh consumer
        broker.append("in", f"m{i}".encode(), b"k")
    await run_until(loop, lambda: broker.committed.get(("g", ("in", 0))) == 30)
    assert broken.stopped and len(fresh) == 1
    values = [r.value for r in broker.records("out")]
    assert set(values) == {f"M{i}".encode() for i in range(30)}


class RevokedWhileAcquired(MemoryConsumer):
    """As aiokafka: pausing or seeking a partition this member no longer holds raises. The group takes
    the partition away while its committed offset is being read (a second instance joining)."""

    revoke_during_committed = True

    def _held(self, tp) -> None:  # type: ignore[no-untyped-def]
        from aiokafka.errors import IllegalStateError

        if tp not in self.assignment():
            raise IllegalStateError(f"No current assignment for partition {tp}")

    def pause(self, *partitions) -> None:  # type: ignore[no-untyped-def]
        for tp in partitions:
            self._held(tp)
        super().pause(*partitions)

    async def seek_to_beginning(self, *partitions) -> None:  # type: ignore[no-untyped-def]
        for tp in partitions:
            self._held(tp)
        await super().seek_to_beginning(*partitions)

    async def committed(self, tp):  # type: ignore[no-untyped-def]
        if self.revoke_during_committed:
            self.revoke_during_committed = False
            await self.rebalance(set())
        return await super().committed(tp)


async def test_a_partition_revoked_while_it_is_acquired_leaves_the_loop_running() -> None:
    """Before, the loop died: reading from the beginning a partition revoked meanwhile raised, and so did
    pausing it in the error path (intake's correlation stage stopped for good as a second instance
    joined the group)."""
    broker = MemoryBroker(partitions=1)
    broker.append("in", b"a", key=b"k")

    async def handler(records):
        return upper(records)

    consumer = RevokedWhileAcquired(broker, "g")
    loop = make_loop(broker, handler, eos=True, consumer=consumer)
    task = asyncio.create_task(loop.run())
    await wait_until(lambda: not consumer.revoke_during_committed or task.done(), interval_s=0.01)
    await asyncio.sleep(0.05)
    assert not task.done(), task.exception() if task.done() else None
    tp = TopicPartition("in", 0)
    await consumer.rebalance({tp})  # the partition comes back: taken up and read once
    await wait_until(
        lambda: [r.value for r in broker.records("out")] == [b"A"] or task.done(), interval_s=0.01
    )
    assert not task.done(), task.exception() if task.done() else None
    assert [r.value for r in broker.records("out")] == [b"A"]
    loop.stop()
    await task


class SubscriptionChangedInTransaction(RevokedWhileAcquired):
    """As aiokafka with a topic pattern: a new matching topic replaces the member's subscription, and
    with it the assignment, at once; the revoke callback naming the previous assignment runs only when
    the rebalance that follows begins. Pausing a partition in between raises."""

    revoke_during_committed = False

    def __init__(self, broker: MemoryBroker, group_id: str) -> None:
        super().__init__(broker, group_id)
        self.previous: set[TopicPartition] | None = None  # dropped, its revoke not yet called

    def assignment(self) -> set[TopicPartition]:
        return set() if self.previous is not None else super().assignment()

    def change_subscription(self) -> None:
        self.previous = super().assignment()

    async def rebalance(self, assignment: set[TopicPartition]) -> None:
        if self.previous is not None:
            self._assignment, self.previous = self.previous, None  # the revoke names it
        await super().rebalance(assignment)


class FailsInCommit(MemoryProducer):
    """A partition's transactional producer whose first commit fails for good (fatal: aiokafka's
    transaction manager reports it; fenced: a newer producer took its id) while `meanwhile` runs."""

    def __init__(self, broker: MemoryBroker, tid: str, kind: str, meanwhile) -> None:  # type: ignore[no-untyped-def]
        super().__init__(broker, transactional_id=tid)
        self.kind, self.meanwhile, self.failed = kind, meanwhile, False
        self._txn_manager = self

    def is_fatal_error(self) -> bool:
        return self.failed and self.kind == "fatal"

    @asynccontextmanager
    async def transaction(self):  # type: ignore[no-untyped-def]
        if self.failed:
            async with super().transaction():
                yield
            return
        self._txn = []  # what it sends is never committed
        yield
        self._txn, self.failed = None, True
        self.meanwhile()
        from aiokafka.errors import KafkaError, ProducerFenced

        raise ProducerFenced() if self.kind == "fenced" else KafkaError("transaction coordinator lost")


@pytest.mark.parametrize("kind", ["fatal", "fenced"])
async def test_a_partition_dropped_while_its_transaction_fails_leaves_the_loop_running(kind: str) -> None:
    """Before, the loop died: after a producer failed for good (or was fenced), pausing its partition
    raised when the member's assignment had gone meanwhile (a new topic matched the subscription
    pattern) and the rebalance's revoke had not yet run."""
    broker = MemoryBroker(partitions=1)
    broker.append("in", b"a", key=b"k")
    tp = TopicPartition("in", 0)

    async def handler(records):
        return upper(records)

    consumer = SubscriptionChangedInTransaction(broker, "g")
    failing = FailsInCommit(broker, "g.in.0", kind, consumer.change_subscription)
    started: list[MemoryProducer] = []

    def transactional(tp: TopicPartition) -> MemoryProducer:
        started.append(failing if not started else MemoryProducer(broker, transactional_id="g.in.0"))
        return started[-1]

    loop = ConsumerLoop(
        consumer=consumer,
        handler=handler,
        producer=MemoryProducer(broker),
        transactional=transactional,
        config=LoopConfig(
            group_id="g",
            topics=("in",),
            service="test",
            dlq_topic="dlq",
            exactly_once=True,
            commit_interval_s=0,
        ),
    )
    task = asyncio.create_task(loop.run())
    await wait_until(lambda: failing.failed or task.done(), interval_s=0.01)
    await asyncio.sleep(0.05)
    assert not task.done(), task.exception() if task.done() else None
    assert broker.records("out") == []
    await consumer.rebalance({tp})  # the rebalance gives the partition back: taken up and read once
    await wait_until(
        lambda: [r.value for r in broker.records("out")] == [b"A"] or task.done(), interval_s=0.01
    )
    assert not task.done(), task.exception() if task.done() else None
    assert [r.value for r in broker.records("out")] == [b"A"]
    assert broker.committed[("g", tp)] == 1 and failing.stopped and len(started) == 2
    loop.stop()
    await task


class CountedCommits(MemoryProducer):
    """Each commit waits (up to `hold_s`) until `width` transactions are being committed at once, and
    counts how many were at most: transactions committed one after another never overlap."""

    open_now = 0
    most = 0

    def __init__(self, broker: MemoryBroker, *, width: int, hold_s: float = 0.3, **kw) -> None:
        super().__init__(broker, **kw)
        self.width, self.hold_s = width, hold_s

    @asynccontextmanager
    async def transaction(self):
        async with super().transaction():
            yield
            cls = CountedCommits
            cls.open_now += 1
            cls.most = max(cls.most, cls.open_now)
            with contextlib.suppress(AssertionError):  # not all open: committed one after another
                await wait_until(lambda: cls.open_now >= self.width, timeout_s=self.hold_s, interval_s=0.005)
            await asyncio.sleep(0.01)
            cls.open_now -= 1


async def test_the_transactions_of_one_fetch_commit_together_and_handlers_run_one_at_a_time() -> None:
    """Exactly once, a fetch holding three partitions is three transactions on three producers: they
    are committed concurrently (a round costs one commit's latency, not three), while the handler
    still runs for one batch at a time, in partition order."""
    broker = MemoryBroker(partitions=3)
    for p in range(3):
        for i in range(2):
            broker.append("in", f"p{p}m{i}".encode(), partition=p)
    CountedCommits.open_now = CountedCommits.most = 0
    running, most_running, order = 0, 0, []

    async def handler(rs):
        nonlocal running, most_running
        running += 1
        most_running = max(most_running, running)
        await asyncio.sleep(0.01)
        running -= 1
        order.append(rs[0].partition)
        return upper(rs)

    loop = ConsumerLoop(
        consumer=MemoryConsumer(broker, "g"),
        handler=handler,
        transactional=lambda tp: CountedCommits(broker, width=3, transactional_id=f"g.in.{tp.partition}"),
        config=LoopConfig(group_id="g", topics=("in",), service="test", dlq_topic="dlq", exactly_once=True),
    )
    await run_until(loop, lambda: len(broker.records("out")) == 6, timeout=5)
    assert CountedCommits.most == 3, "the three transactions were committed one after another"
    assert most_running == 1 and order == [0, 1, 2]
    assert sorted(r.value for r in broker.records("out")) == sorted(
        f"P{p}M{i}".encode() for p in range(3) for i in range(2)
    )
    assert all(broker.committed[("g", TopicPartition("in", p))] == 2 for p in range(3))


async def test_a_transaction_failing_beside_others_is_retried_alone() -> None:
    """Of the concurrent transactions of one fetch, one fails transiently: it alone is retried (its
    state change applied once, after its commit); the others are delivered once and not again."""
    broker = MemoryBroker(partitions=3)
    for p in range(3):
        broker.append("in", f"p{p}".encode(), partition=p)
    handled: list[int] = []
    applied: list[int] = []

    async def handler(rs):
        handled.append(rs[0].partition)
        res = upper(rs)
        res.after_commit.append(lambda: applied.append(rs[0].partition))
        return res

    def producers(tp: TopicPartition) -> MemoryProducer:
        failing = 1 if tp.partition == 1 else 0  # its first transaction fails mid-way
        return MemoryProducer(broker, fail_sends=failing, transactional_id=f"g.in.{tp.partition}")

    loop = ConsumerLoop(
        consumer=MemoryConsumer(broker, "g"),
        handler=handler,
        transactional=producers,
        config=LoopConfig(group_id="g", topics=("in",), service="test", dlq_topic="dlq", exactly_once=True),
    )
    await run_until(loop, lambda: len(broker.records("out")) == 3 and len(applied) == 3, timeout=5)
    assert sorted(r.value for r in broker.records("out")) == [b"P0", b"P1", b"P2"]
    assert handled == [0, 1, 2, 1] and sorted(applied) == [0, 1, 2]


async def test_read_to_end_tells_whether_an_offset_is_at_the_partitions_end() -> None:
    broker = MemoryBroker()
    for i in range(3):
        broker.append("in", f"m{i}".encode())
    consumer = MemoryConsumer(broker, "g")
    loop = make_loop(broker, lambda rs: upper(rs), consumer=consumer)
    tp = TopicPartition("in", 0)
    await consumer.rebalance({tp})
    assert not loop.read_to_end(tp, 2) and loop.read_to_end(tp, 3)


async def test_read_to_end_of_a_partition_no_longer_held_is_false_not_an_error() -> None:
    """A handler asks while a rebalance took its partition away (aiokafka's consumer asserts on a
    partition it does not hold: the batch would have been dead-lettered as poison)."""
    broker = MemoryBroker()
    broker.append("in", b"m0")
    consumer = MemoryConsumer(broker, "g")
    loop = make_loop(broker, lambda rs: upper(rs), consumer=consumer)
    await consumer.rebalance(set())
    assert loop.read_to_end(TopicPartition("in", 0), 1) is False


@pytest.mark.parametrize("eos", [False, True])
async def test_a_tick_with_nothing_to_deliver_makes_no_span(eos: bool) -> None:
    """Ticks can be frequent (idle watermarks every 100 ms): one that has nothing to deliver leaves
    no trace; one that delivers is a "tick" span, ended once its outputs are delivered."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    broker = MemoryBroker()
    ticks = 0

    async def handler(rs):
        return upper(rs)

    async def tick(_tp):
        nonlocal ticks
        ticks += 1
        return BatchResult(outputs=[OutRecord("out", b"tock")] if ticks % 5 == 0 else [])

    loop = make_loop(broker, handler, eos=eos, tick_interval_s=0.01)
    loop._tick = tick
    loop._tracer = provider.get_tracer("test")
    await run_until(loop, lambda: ticks >= 10)
    names = [s.name for s in exporter.get_finished_spans()]
    delivered = len(broker.records("out"))
    assert delivered >= 2 and names == ["tick"] * delivered


class CountingCommits(MemoryProducer):
    """Counts the transactions committed by every producer of a test."""

    commits = 0

    @asynccontextmanager
    async def transaction(self):
        async with super().transaction():
            yield
        CountingCommits.commits += 1


async def test_under_load_a_wave_gathers_what_arrives_within_the_wave_interval() -> None:
    """Records arriving one by one, every few milliseconds: without a pause between waves each went
    in a transaction of its own (five requests to the broker apiece, and as many transaction markers
    on every output partition), the cost of which, not the records, then filled the cores. A wave
    begun within `wave_interval_ms` of the last one gathers what arrives meanwhile; the records keep
    their order and every one is delivered once."""
    broker = MemoryBroker(partitions=1)
    CountingCommits.commits = 0
    loop = ConsumerLoop(
        consumer=MemoryConsumer(broker, "g"),
        handler=lambda rs: _async(upper(rs)),
        transactional=lambda tp: CountingCommits(broker, transactional_id=f"g.in.{tp.partition}"),
        config=LoopConfig(
            group_id="g", topics=("in",), service="test", exactly_once=True, wave_interval_ms=100
        ),
    )

    async def arrive() -> None:
        for i in range(60):
            broker.append("in", f"m{i:02}".encode(), partition=0)
            await asyncio.sleep(0.005)

    feeding = asyncio.create_task(arrive())
    await run_until(loop, lambda: len(broker.records("out")) == 60, timeout=10)
    await feeding
    assert [r.value for r in broker.records("out")] == [f"M{i:02}".encode() for i in range(60)]
    assert broker.committed[("g", TopicPartition("in", 0))] == 60
    # ~0.3 s of arrivals at most one wave per 100 ms (a sleep may oversleep: some slack), not ~60.
    assert CountingCommits.commits <= 10, f"{CountingCommits.commits} transactions for 60 records"


async def test_a_record_after_a_quiet_spell_is_not_held_for_the_wave_interval() -> None:
    """The interval only spaces waves that follow each other: the first record after a quiet spell
    goes at once, however long the interval (here 30 s)."""
    broker = MemoryBroker(partitions=1)
    loop = make_loop(broker, lambda rs: _async(upper(rs)), eos=True, wave_interval_ms=30_000)
    broker.append("in", b"a", partition=0)
    task = asyncio.create_task(loop.run())
    try:
        await wait_until(lambda: len(broker.records("out")) == 1, timeout_s=5, interval_s=0.01, what="a")
    finally:
        loop.stop()
        await task


async def _async(result: BatchResult) -> BatchResult:
    return result


@pytest.mark.parametrize("eos", [False, True])
async def test_a_partition_that_moves_while_its_wave_gathers_is_read_again_and_handled_once(
    eos: bool,
) -> None:
    """The partition is revoked and assigned again while a wave gathers its records: what was gathered
    under the old assignment is dropped (never merged with what is read again from the committed
    offset), and every record is handled and committed exactly once."""
    broker = MemoryBroker(partitions=1)
    seen: list[bytes] = []

    async def handler(rs):
        seen.extend(r.value for r in rs)
        return upper(rs)

    loop = make_loop(broker, handler, eos=eos, wave_interval_ms=400)
    consumer = loop._consumer
    task = asyncio.create_task(loop.run())
    try:
        broker.append("in", b"a0", partition=0)
        await wait_until(lambda: len(broker.records("out")) == 1, timeout_s=5, interval_s=0.005, what="a0")
        broker.append("in", b"a1", partition=0)  # within the interval: it gathers
        await asyncio.sleep(0.1)
        assert seen == [b"a0"], "a1 went in a wave of its own within the interval"
        await asyncio.wait_for(consumer.rebalance(set()), 5)
        await asyncio.wait_for(consumer.rebalance({TopicPartition("in", 0)}), 5)
        broker.append("in", b"a2", partition=0)
        await wait_until(lambda: len(broker.records("out")) == 3, timeout_s=5, interval_s=0.01, what="a2")
        await asyncio.sleep(0.5)  # nothing more comes out
    finally:
        loop.stop()
        await task
    assert seen == [b"a0", b"a1", b"a2"]
    assert [r.value for r in broker.records("out")] == [b"A0", b"A1", b"A2"]
    assert broker.committed[("g", TopicPartition("in", 0))] == 3
