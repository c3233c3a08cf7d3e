"""What the demo sees of the running system: cases.v1, case.lifecycle.v1, the departments' orders and
grid.registry.v1, read from the moment the watch starts.

The consumer subscribes by pattern (order topics appear when a department gets its first order) and,
on assignment, seeks each partition to its end offset as it was when the watch started, or to the
beginning for a partition created since: nothing written after the start is missed, nothing older is
read. `until(predicate)` waits for what the demo expects, with a timeout.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from onegrid.kafka.loop import make_consumer
from onegrid.settings import KafkaSettings
from onegrid.topics import CASE_LIFECYCLE, CASES, GRID_REGISTRY, orders_topic_pattern

Json = dict[str, Any]
ORDERS = orders_topic_pattern().pattern


class _FromSnapshot(ConsumerRebalanceListener):  # type: ignore[misc]
    """Every new order topic rebalances the group; each partition resumes where this watch left it
    (nothing is committed), else at the start snapshot, else at its beginning."""

    def __init__(self, consumer: AIOKafkaConsumer, snapshot: dict[TopicPartition, int]) -> None:
        self.consumer, self.snapshot = consumer, snapshot
        self.position: dict[TopicPartition, int] = {}

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        for tp in assigned:
            at = self.position.get(tp, self.snapshot.get(tp))
            if at is not None:
                self.consumer.seek(tp, at)
            else:
                await self.consumer.seek_to_beginning(tp)


class Watch:
    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self.pattern = (
            f"^({re.escape(CASES)}|{re.escape(CASE_LIFECYCLE)}|{re.escape(GRID_REGISTRY)}|{ORDERS})$"
        )
        self.case_of: dict[tuple[str, str], str] = {}  # (network, source id) -> case id
        self.case_events: list[Json] = []
        self.lifecycle: dict[str, list[Json]] = defaultdict(list)
        self.orders: dict[str, list[Json]] = defaultdict(list)
        self.registry_keys: set[str] = set()
        self.on_order: Callable[[Json], None] = lambda order: None
        self.on_lifecycle: Callable[[Json], None] = lambda event: None
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._assigned = asyncio.Event()

    async def start(self) -> None:
        snapshot = await self._ends()
        consumer = make_consumer(
            self.kafka,
            group_id=f"sim.demo.{uuid.uuid4().hex[:8]}",
            client_id="onegrid-simulators-demo",
            metadata_max_age_ms=2000,
        )
        listener = _FromSnapshot(consumer, snapshot)
        consumer.subscribe(pattern=self.pattern, listener=listener)
        await consumer.start()
        self._task = asyncio.create_task(self._read(consumer, listener.position))
        await asyncio.wait_for(self._assigned.wait(), timeout=60)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def until(self, what: Callable[[], Any], timeout_s: float) -> Any:
        """The first truthy value of `what()`, re-evaluated after every batch read; None on timeout."""
        async with self._changed:
            try:
                return await asyncio.wait_for(self._changed.wait_for(what), timeout=timeout_s)
            except TimeoutError:
                return None

    async def _ends(self) -> dict[TopicPartition, int]:
        probe = AIOKafkaConsumer(**self.kafka.client_kwargs())
        await probe.start()
        try:
            tps = [
                TopicPartition(t, p)
                for t in await probe.topics()
                if re.match(self.pattern, t)
                for p in probe.partitions_for_topic(t) or ()
            ]
            return dict(await probe.end_offsets(tps)) if tps else {}
        finally:
            await probe.stop()

    async def _read(self, consumer: AIOKafkaConsumer, position: dict[TopicPartition, int]) -> None:
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=300)
                if consumer.assignment():
                    self._assigned.set()
                for tp, records in batch.items():
                    for r in records:
                        self._take(r)
                    if records:
                        position[tp] = records[-1].offset + 1
                if batch:
                    async with self._changed:
                        self._changed.notify_all()
        finally:
            await consumer.stop()

    def _take(self, r: ConsumerRecord[bytes, bytes]) -> None:
        if r.topic == GRID_REGISTRY:
            self.registry_keys.add((r.key or b"").decode())
            return
        try:
            body = json.loads(r.value or b"")
        except ValueError:
            return
        if r.topic == CASES:
            self.case_events.append(body)
            src = body.get("source") or {}
            self.case_of[(src.get("network", ""), src.get("source_id", ""))] = body["case_id"]
        elif r.topic == CASE_LIFECYCLE:
            if any(e["event_id"] == body["event_id"] for e in self.lifecycle[body["case_id"]]):
                return  # published again only after a restore of dispatch's database: keep the first
            self.lifecycle[body["case_id"]].append(body)
            self.on_lifecycle(body)
        else:
            if any(o["order_id"] == body["order_id"] for o in self.orders[body["case_id"]]):
                return
            self.orders[body["case_id"]].append(body)
            self.on_order(body)
