"""An in-memory broker with the subset of the aiokafka client API the library uses.

For unit tests only: it proves the loop's logic (ordering, commits, DLQ, isolation, transactions'
all-or-nothing) in milliseconds. Integration tests run the same scenarios on the real broker.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from onegrid.kafka.partitioner import keyed_partition
from onegrid.topics import OUTBOX_PASSES


@dataclass(frozen=True)
class MemoryRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()
    timestamp: int = 0


@dataclass
class MemoryBroker:
    partitions: int = 1
    logs: dict[TopicPartition, list[MemoryRecord]] = field(default_factory=lambda: defaultdict(list))
    committed: dict[tuple[str, TopicPartition], int] = field(default_factory=dict)
    # The metadata committed with each offset (an outbox relay's pass number).
    metadata: dict[tuple[str, TopicPartition], str] = field(default_factory=dict)
    # The current producer epoch of each transactional id: a newer producer fences older ones.
    epochs: dict[str, int] = field(default_factory=dict)

    def append(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
    ) -> MemoryRecord:
        # Kafka's default partitioner (positive murmur2 of the key): the same partition in every
        # process, where Python's salted hash() of bytes would spread keys differently each run.
        p = partition if partition is not None else (keyed_partition(key, self.partitions) if key else 0)
        tp = TopicPartition(topic, p)
        rec = MemoryRecord(topic, p, len(self.logs[tp]), key, value, tuple(headers))
        self.logs[tp].append(rec)
        return rec

    def records(self, topic: str) -> list[MemoryRecord]:
        return [r for tp, rs in sorted(self.logs.items()) if tp.topic == topic for r in rs]


class MemoryConsumer:
    def __init__(self, broker: MemoryBroker, group_id: str) -> None:
        self.broker = broker
        self.group_id = group_id
        self._topics: list[str] = []
        self._listener: Any = None
        self._position: dict[TopicPartition, int] = {}
        self._assignment: set[TopicPartition] | None = None  # None: not joined yet
        self._paused: set[TopicPartition] = set()
        self.polls = 0
        self.stopped = False

    async def start(self) -> None:
        pass

    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        self._topics = topics
        self._listener = listener

    def assignment(self) -> set[TopicPartition]:
        if self._assignment is None:
            return {TopicPartition(t, p) for t in self._topics for p in range(self.broker.partitions)}
        return set(self._assignment)

    async def rebalance(self, assignment: set[TopicPartition]) -> None:
        """What a group rebalance does to this member: revoke all, then assign `assignment`, whose
        positions restart from the committed offsets."""
        old = self.assignment()
        if self._listener:
            await self._listener.on_partitions_revoked(old)
        self._assignment = set(assignment)
        self._paused.clear()
        self._position = {tp: self.broker.committed.get((self.group_id, tp), 0) for tp in assignment}
        if self._listener:
            await self._listener.on_partitions_assigned(set(assignment))

    def pause(self, *partitions: TopicPartition) -> None:
        self._paused.update(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self._paused.difference_update(partitions)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.broker.committed.get((self.group_id, tp))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._position[tp] = offset

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self._position[tp] = 0

    async def getmany(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[MemoryRecord]]:
        self.polls += 1
        if self._assignment is None:
            self._assignment = self.assignment()
            for tp in self._assignment:
                self._position[tp] = self.broker.committed.get((self.group_id, tp), 0)
            if self._listener:
                await self._listener.on_partitions_assigned(self.assignment())
        # As the real consumer: back as soon as records are there, else after `timeout_ms`.
        deadline = time.monotonic() + timeout_ms / 1000
        while not (out := self._take(max_records or 1 << 30)):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await asyncio.sleep(min(left, 0.002))
        return out

    def _take(self, budget: int) -> dict[TopicPartition, list[MemoryRecord]]:
        out: dict[TopicPartition, list[MemoryRecord]] = {}
        for tp in sorted(self.assignment() - self._paused):
            log = self.broker.logs.get(tp, [])
            pos = self._position[tp]
            take = log[pos : pos + budget]
            if take:
                out[tp] = take
                self._position[tp] = pos + len(take)
                budget -= len(take)
        return out

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        for tp, o in offsets.items():
            self.broker.committed[(self.group_id, tp)] = o

    def highwater(self, tp: TopicPartition) -> int:
        assert tp in self.assignment(), "Partition is not assigned"  # as aiokafka's consumer
        return len(self.broker.logs.get(tp, []))

    def last_stable_offset(self, tp: TopicPartition) -> int:
        return self.highwater(tp)  # only committed records reach the in-memory logs

    async def stop(self) -> None:
        self.stopped = True


class MemoryProducer:
    """Sends go to a pending list inside a transaction and reach the log only on commit. With a
    `transactional_id`, `start()` fences every earlier producer of that id (its commits raise
    ProducerFenced), as InitProducerId does."""

    def __init__(
        self, broker: MemoryBroker, *, fail_sends: int = 0, transactional_id: str | None = None
    ) -> None:
        self.broker = broker
        self._txn: list[tuple[Any, ...]] | None = None
        self._txn_offsets: tuple[dict[TopicPartition, Any], str] | None = None
        self.fail_sends = fail_sends  # the next N sends raise, to test retries
        self.transactional_id = transactional_id
        self.epoch = 0
        self.stopped = False

    async def start(self) -> None:
        if self.transactional_id is not None:
            self.epoch = self.broker.epochs.get(self.transactional_id, 0) + 1
            self.broker.epochs[self.transactional_id] = self.epoch

    async def stop(self) -> None:
        self.stopped = True

    def fenced(self) -> bool:
        return (
            self.transactional_id is not None and self.broker.epochs.get(self.transactional_id) != self.epoch
        )

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[Any]:
        if self.fail_sends > 0:
            self.fail_sends -= 1
            raise ConnectionError("simulated broker outage")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        item = (topic, value, key, headers or [], partition)
        if self._txn is not None:
            self._txn.append(item)
            fut.set_result(None)
        else:
            fut.set_result(self.broker.append(topic, value, key, headers or [], partition))
        return fut

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self._txn, self._txn_offsets = [], None
        try:
            yield
        except BaseException:
            self._txn, self._txn_offsets = None, None
            raise
        items, offsets = self._txn, self._txn_offsets
        self._txn, self._txn_offsets = None, None
        if self.fenced():
            from aiokafka.errors import ProducerFenced

            raise ProducerFenced()
        for topic, value, key, headers, partition in items:
            self.broker.append(topic, value, key, headers, partition)
        if offsets:
            for tp, meta in offsets[0].items():
                self.broker.committed[(offsets[1], tp)] = meta.offset
                self.broker.metadata[(offsets[1], tp)] = meta.metadata

    async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, Any], group_id: str) -> None:
        self._txn_offsets = (offsets, group_id)


class MemoryRelayLink:
    """An outbox relay's `RelayLink` on the in-memory broker: transactional fakes and the pass
    number committed with the relay's group offset. `producers` wraps each new producer (a test's
    failing one)."""

    def __init__(self, broker: MemoryBroker, producers: Any = None) -> None:
        self.broker = broker
        self.passes = TopicPartition(OUTBOX_PASSES, 0)
        self._wrap = producers or (lambda p: p)

    def producer(self, transactional_id: str) -> Any:
        return self._wrap(MemoryProducer(self.broker, transactional_id=transactional_id))

    async def last_pass(self, group: str) -> int:
        from onegrid.outbox import pass_of  # the outbox imports the Kafka modules this one sits beside

        return pass_of(self.broker.metadata.get((group, self.passes)))
