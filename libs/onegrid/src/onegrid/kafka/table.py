"""A global table: every instance reads a whole (usually compacted) topic, without a consumer group.

Used for the registry view (`grid.registry.v1`) and for a service's own state changelog. `catch_up()`
returns once everything that was in the topic when it was called has been applied, so a service can
refuse to process its input before its view is complete; `follow()` then applies changes as they come.
Nothing is committed: a restarted instance rebuilds from the beginning, or, with `since`, from the
first record of each partition timestamped at or after that time (a state that only needs its recent
history, e.g. a case book bounded by a horizon, need not read a year of an append-only topic).

Records are read committed, i.e. up to each partition's *last stable offset*: the first offset of any
transaction still open, whoever opened it. `catch_up()` stops there. `sync()`, for a handover, goes
on to the end of everything written (see there).

A table followed live lags its topic: a record is applied up to a fetch wait after it is committed,
and a burst (the registry seeded or re-imported after a service started: thousands of records, the
spatial index rebuilt as they land) takes seconds. `current` says whether the table holds everything
the broker last reported committed; a handler whose outputs depend on the table (a report placed in
the grids, a case routed by the rules) waits with `until_current` instead of deciding on a view that
is known to be behind and keeping that decision for good.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from onegrid.kafka.admin import WrittenEnds
from onegrid.kafka.records import Record
from onegrid.settings import KafkaSettings

log = logging.getLogger(__name__)

Apply = Callable[[Sequence[Record]], Awaitable[object]]
# Where reading begins: a time, or asked for one when the table starts (e.g. now minus a horizon).
Since = datetime | Callable[[], datetime]


class GlobalTable:
    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        apply: Apply,
        *,
        client_id: str = "table",
        since: Since | None = None,
    ) -> None:
        self._kafka = kafka
        self._since = since
        self.topic = topic
        self._apply = apply
        self._client_id = client_id
        self._consumer: AIOKafkaConsumer | None = None
        self._ends = WrittenEnds(kafka, client_id=f"{client_id}-ends")  # sync's target
        self.caught_up = asyncio.Event()
        self.applied = 0
        self._stopping = False
        self._following = False
        # Per partition, the position up to which everything has been applied.
        self._applied_to: dict[TopicPartition, int] = {}
        self._progress = asyncio.Condition()
        # Positions after the latest fetch: a batch being applied is known, and not yet applied.
        self._fetched_to: dict[TopicPartition, int] = {}

    async def _start(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            c = AIOKafkaConsumer(
                client_id=self._client_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
                **self._kafka.client_kwargs(),
            )
            await c.start()
            # Without a group, a subscription is assigned every partition; auto_offset_reset="earliest"
            # with nothing committed starts each at its beginning.
            c.subscribe([self.topic])
            for _ in range(200):
                if c.assignment():
                    break
                await asyncio.sleep(0.05)
            else:
                await c.stop()
                raise RuntimeError(f"topic {self.topic} has no partitions (does it exist?)")
            if self._since is not None:
                await self._seek_since(c, self._since() if callable(self._since) else self._since)
            self._consumer = c
        return self._consumer

    async def _seek_since(self, c: AIOKafkaConsumer, since: datetime) -> None:
        """Each partition from its first record timestamped at or after `since`; a partition with
        none that recent from its end (nothing of it is read)."""
        partitions = sorted(c.assignment())
        ms = int(since.timestamp() * 1000)
        found = await c.offsets_for_times({tp: ms for tp in partitions})
        for tp in partitions:
            at = found.get(tp)
            if at is None:
                await c.seek_to_end(tp)
            else:
                c.seek(tp, at.offset)
        log.info("%s: reading from %s on", self.topic, since.isoformat())

    async def catch_up(
        self, timeout_s: float = 120.0, *, ends: dict[TopicPartition, int] | None = None
    ) -> int:
        """Apply everything up to the end offsets seen now (committed records: up to each partition's
        last stable offset), or up to `ends`; returns how many records were applied."""
        c = await self._start()
        if ends is None:
            ends = await c.end_offsets(list(c.assignment()))
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            positions = {tp: await c.position(tp) for tp in ends}
            if all(positions[tp] >= end for tp, end in ends.items()):
                break
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{self.topic}: not caught up after {timeout_s}s ({positions} < {ends})")
            await self._poll(c, timeout_ms=200)
        self._applied_to.update(positions)  # also when nothing was left to read
        self.caught_up.set()
        log.info("%s: caught up with %d records", self.topic, self.applied)
        return self.applied

    async def _poll(self, c: AIOKafkaConsumer, timeout_ms: int) -> None:
        fetched = await c.getmany(timeout_ms=timeout_ms, max_records=5000)
        # Taken right after the fetch: everything below these positions is in `fetched` or before it.
        positions = {tp: await c.position(tp) for tp in c.assignment()}
        records: list[Record] = [r for rs in fetched.values() for r in rs]
        self._fetched_to = positions
        if records:
            await self._apply(records)
            self.applied += len(records)
        async with self._progress:
            self._applied_to.update(positions)
            self._progress.notify_all()

    @property
    def current(self) -> bool:
        """Whether everything the broker last reported committed (each partition's last stable
        offset in its latest fetch response, which the consumer's fetcher keeps asking for) is
        applied: false before the first catch-up, while a batch is applied, and while records the
        consumer knows of wait to be. A record committed after the latest fetch response is not
        known yet (for at most the fetch wait, 500 ms)."""
        return self._applied(self._known_ends())

    def more_known(self) -> bool:
        """Whether the consumer knows of committed records beyond the batch being applied (or last
        applied): for an apply function that would rather do its expensive follow-up work (a
        spatial index rebuilt) once, after the last batch of a burst, than after every batch."""
        return any(end > self._fetched_to.get(tp, 0) for tp, end in self._known_ends().items())

    async def until_current(self, timeout_s: float) -> bool:
        """Waits up to `timeout_s` until everything the broker had reported committed when this was
        called is applied; returns whether it is. (A fixed target: records committed meanwhile
        do not hold the caller up, so a steady stream of changes cannot keep it waiting.)"""
        ends = self._known_ends()
        if self._applied(ends):
            return True
        try:
            async with self._progress:
                await asyncio.wait_for(self._progress.wait_for(lambda: self._applied(ends)), timeout_s)
        except TimeoutError:
            return False
        return True

    def _known_ends(self) -> dict[TopicPartition, int]:
        c = self._consumer
        if c is None or not self._following:
            # Only caught up, never followed: nothing newer will be applied, so none is waited for
            # (the consumer's fetcher may still have heard of newer records).
            return {}
        ends = {}
        for tp in c.assignment():
            end = c.last_stable_offset(tp)
            if end is None or end < 0:  # no fetch response yet, or read uncommitted
                end = c.highwater(tp)
            # A batch fetched is known even before its partition's offsets are.
            ends[tp] = max(end or 0, self._fetched_to.get(tp, 0))
        return ends

    def _applied(self, ends: dict[TopicPartition, int]) -> bool:
        return self.caught_up.is_set() and all(self._applied_to.get(tp, 0) >= e for tp, e in ends.items())

    async def sync(self, timeout_s: float = 120.0) -> None:
        """Return once every record written to the topic before this call is applied or known aborted.

        For a state handover: once the previous owner of a partition is fenced, its last transaction
        is committed or aborted, and a new owner calls this before processing, so it starts from
        that owner's last commit. The target is the end of everything written (WrittenEnds), not
        the last stable offset: on a topic other producers write too (a changelog two stages share,
        `cases.v1`), another instance's transaction left open (killed mid-batch, not fenced yet)
        holds that offset below the previous owner's last commit, and stopping there started the new
        owner on the state before it. So this also waits for every transaction open now to end."""
        c = await self._start()
        ends = await self._ends.of(sorted(c.assignment()))
        if not self._following:
            await self.catch_up(timeout_s, ends=ends)
            return
        async with self._progress:
            await asyncio.wait_for(
                self._progress.wait_for(
                    lambda: all(self._applied_to.get(tp, 0) >= e for tp, e in ends.items())
                ),
                timeout_s,
            )

    async def follow(self) -> None:
        """Catch up (if not yet) and keep applying changes until `stop()`."""
        c = await self._start()
        if not self.caught_up.is_set():
            await self.catch_up()
        self._following = True
        try:
            while not self._stopping:
                await self._poll(c, timeout_ms=500)
        finally:
            self._following = False
            await c.stop()
            self._consumer = None
            await self._ends.close()

    def stop(self) -> None:
        """Ends `follow()`, which then closes the consumer."""
        self._stopping = True

    async def close(self) -> None:
        """Closes the consumer of a table that was only caught up (never followed); with `follow()`
        running, the same as `stop()`."""
        self._stopping = True
        if self._consumer is not None and not self._following:
            await self._consumer.stop()
            self._consumer = None
        await self._ends.close()
