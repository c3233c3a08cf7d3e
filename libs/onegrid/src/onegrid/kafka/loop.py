"""The one consumer loop every service runs.

Contract:
- Batches come from `getmany`; within a partition, records reach the handler in offset order.
- The handler is a coroutine `(records) -> BatchResult`; it must be safe to call again with the same
  records or a subset of them (after a crash, a transient failure, or poison isolation), i.e. its
  side effects are idempotent. It does not produce; the loop produces what it returns.
- Offsets are committed only after the batch's outputs and dead letters are acknowledged by the broker:
  at least once with `exactly_once=False` (offsets committed on the commit interval, on revoke and on
  shutdown), exactly once with `exactly_once=True` (outputs, dead letters and offsets in one Kafka
  transaction per batch; downstream consumers read with isolation_level=read_committed).
- Exactly once, and fencing: a batch holds the records of ONE input partition, and its transaction
  runs on that partition's own producer, whose `transactional.id` is stable per (group, topic,
  partition) (the classic scheme before KIP-447, which aiokafka lacks: it commits transactional
  offsets without the group generation). The producer is started in the loop's first round after
  the partition is assigned (the partition stays paused until then), before anything is read from
  it: that fences the previous owner (a stalled or evicted instance can no longer commit outputs or
  offsets for it) and aborts its open transaction at once (readers are not blocked for the
  transaction timeout); then `prepare(tp)` runs (e.g. state the previous owner wrote is caught up to
  the end of its changelog), and the partition is read from its committed offset. Every partition
  of an assignment is fenced before any is prepared (a `prepare` may wait for a transaction that
  another of them fences). A fenced batch is dropped and its partition paused until the group
  assigns it again.
- A revoke that lands while a batch's transaction is being committed does not stop that producer
  under it: the transaction ends (committed, or aborted once the next owner fences it) and only
  then is its producer stopped. A producer that fails to start is stopped again at once.
- Records of a partition no longer assigned are dropped, never processed (fetched before a revoke,
  or waiting for a retry).
- A handler exception that is not transient is isolated to the record that causes it: the batch is
  split at that record (found by bisecting prefixes), the records before it are delivered together
  with it dead-lettered (reason `unhandled.<Type>`), and the records after it form the next batch,
  handled on the state their predecessors committed (a record depending on an earlier one of the
  same batch is never handled without it).
- Transient failures and `Backpressure` retry the same batch with capped backoff; meanwhile every
  assigned partition is paused and the consumer keeps polling, so it stays in its group and a
  rebalance never waits for the retries. The dead-letter limit counts each record once, when its
  batch is delivered.
- `BatchResult.after_commit` callbacks run only after the batch is committed (exactly-once mode) or
  its outputs acknowledged (at-least-once mode): the place to apply in-memory state changes.
- Exactly once, the batches of one fetch (one per partition) form a *wave*: the handler runs for one
  batch at a time, in order, and their transactions, each on its own partition's producer, commit
  concurrently (a round costs one commit's latency, not one per partition). A handler may thus run
  before an earlier batch of its wave has committed and applied its `after_commit`: batches of
  different partitions must not depend on each other's in-memory state changes (state spanning
  partitions travels through Kafka, as it must between instances). A batch of the wave that fails
  transiently is retried alone; the others are done. Ticks of all partitions form a wave too.
- Never commits a partition that was revoked. A commit refused because the instance was evicted
  (`CommitFailedError`) is logged and its offsets dropped: those records are processed again by the
  partition's next owner (at least once), the loop goes on.
- Under load a wave begins at most `wave_interval_ms` after the one before it and gathers what is
  fetched meanwhile (`_gather`): a partition's records stay in offset order, a batch never exceeds
  `batch_max_records`, and after a quiet spell a record goes at once.
- Ticks (`tick_interval_s`): the `tick` callable (default: the handler with no records) is called
  once per assigned partition with that partition, and its outputs go out in that partition's
  transaction (exactly once) or as plain sends; each owner does the time-driven work of its own
  partitions.
- `stop()` (SIGTERM): the current batch finishes, offsets are committed, the consumer leaves its group.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError, ProducerFenced
from aiokafka.structs import OffsetAndMetadata
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from onegrid import telemetry
from onegrid.kafka.policy import Backoff, Backpressure, DlqGuard, DlqLimitExceeded, is_transient
from onegrid.kafka.producer import send_all
from onegrid.kafka.records import BatchResult, DeadLetter, OutRecord, Record, dead_letter_record
from onegrid.settings import WAVE_INTERVAL_MS, KafkaSettings

log = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence[Record]], Awaitable[BatchResult]]
TickHandler = Callable[[TopicPartition], Awaitable[BatchResult]]
# Makes the transactional producer of one input partition (not started).
PartitionProducers = Callable[[TopicPartition], AIOKafkaProducer]
# Run when a partition becomes this instance's, after its previous owner is fenced and before any of
# its records is handled: the place to catch up state the previous owner wrote.
PreparePartition = Callable[[TopicPartition], Awaitable[None]]


@dataclass(frozen=True)
class LoopConfig:
    group_id: str
    topics: tuple[str, ...]
    service: str
    dlq_topic: str | None = None
    quarantine_topic: str | None = None
    exactly_once: bool = False
    batch_max_records: int = 500
    batch_timeout_ms: int = 100
    commit_interval_s: float = 1.0
    dlq_max_ratio: float = 0.5
    dlq_max_consecutive: int = 1000
    # A regex subscription on top of `topics` (which are then ignored): topics created later, such as
    # one orders topic per new department, are picked up on the next metadata refresh.
    topic_pattern: str | None = None
    # Every tick_interval_s the loop's tick is called once per assigned partition: time-driven work
    # (a station gone silent) then produces in the same way, in exactly-once mode in a transaction
    # of that partition's producer.
    tick_interval_s: float | None = None
    # Exactly once: how long a partition's producer may take to start (InitProducerId, which fences
    # the previous owner) before the partition is given up for this round and tried again.
    producer_start_timeout_s: float = 60.0
    # Under load, a wave begins at most this long after the one before it, gathering what arrives
    # meanwhile (see `_gather`); 0: every fetch is a wave.
    wave_interval_ms: int = WAVE_INTERVAL_MS


def make_consumer(
    kafka: KafkaSettings, *, group_id: str, client_id: str, **overrides: Any
) -> AIOKafkaConsumer:
    kw: dict[str, Any] = dict(
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    kw.update(kafka.client_kwargs())
    kw.update(overrides)
    return AIOKafkaConsumer(**kw)


def coordination_broken(exc: BaseException) -> bool:
    """aiokafka's group coordination routine died on an unexpected error (aio-libs/aiokafka#796: its
    own `assignment.active` assertion after a coordinator moved); the consumer raises it forever."""
    return isinstance(exc, KafkaError) and "Unexpected error during coordination" in str(exc)


class _Dropped(Exception):
    """The batch is dropped: its partition is no longer ours (revoked, or its producer fenced), or
    it is read again from the committed offset."""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: ConsumerLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._loop._on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._loop._on_assigned(set(assigned))


class ConsumerLoop:
    def __init__(
        self,
        *,
        consumer: AIOKafkaConsumer,
        handler: BatchHandler,
        config: LoopConfig,
        producer: AIOKafkaProducer | None = None,
        transactional: PartitionProducers | None = None,
        tick: TickHandler | None = None,
        prepare: PreparePartition | None = None,
        renew: Callable[[], AIOKafkaConsumer] | None = None,
    ) -> None:
        """`producer` sends at-least-once outputs; `transactional` makes the per-partition
        producers of exactly-once mode (the loop starts and stops them); `prepare` runs for each
        newly owned partition before its first record (exactly-once mode); `renew` makes a fresh
        consumer of the same group, to rejoin with when the client's own group coordination has
        broken (without it the loop stops with the error)."""
        if config.exactly_once and transactional is None:
            raise ValueError("exactly_once needs transactional producers (one per input partition)")
        self._consumer = consumer
        self._renew = renew
        self._handler = handler
        self._producer = producer
        self._transactional = transactional
        self._tick = tick
        self._prepare = prepare
        self.config = config
        self._producers: dict[TopicPartition, AIOKafkaProducer] = {}
        # The producers whose transactions the loop is committing: a revoke meanwhile takes one out of
        # `_producers` but leaves it running; the batch stops it when its transaction has ended.
        self._in_flight: set[AIOKafkaProducer] = set()
        self._fenced: set[TopicPartition] = set()
        # Exactly once: assigned partitions whose producer could not be started yet (paused).
        self._unready: set[TopicPartition] = set()
        # Assignment generations: a batch remembers the generation it was fetched in, a partition the
        # generation it was (re)acquired in; a batch fetched before its partition's latest
        # acquisition came from a position since reset, and is dropped.
        self._generation = 0
        self._since: dict[TopicPartition, int] = {}
        self._revokes = 0
        # One acquisition at a time: the assignment callback and the main loop's retries must never
        # start two producers of one transactional id (the second would fence the first).
        self._acquiring = asyncio.Lock()
        self._pending: dict[TopicPartition, int] = {}
        self._next_offset: dict[TopicPartition, int] = {}
        # Batches fetched and not yet delivered, in order; non-empty only while one is retried.
        self._queue: list[tuple[int, list[Record]]] = []
        self._backoff = Backoff()
        self._retry_at = 0.0
        self._last_commit = time.monotonic()
        self._wave_began = 0.0  # when the last wave began (`_gather`)
        self._next_tick = time.monotonic() + (config.tick_interval_s or 0)
        self._stopping = asyncio.Event()
        self._guard = DlqGuard(max_ratio=config.dlq_max_ratio, max_consecutive=config.dlq_max_consecutive)
        self.assigned: set[TopicPartition] = set()
        # True once the group gave this member an assignment, even an empty one: with more members
        # than partitions the others stand by (ready, holding nothing) and take over on a rebalance.
        self.joined = False
        self.running = False
        self._tracer = telemetry.tracer("onegrid.kafka")
        m = telemetry.meter("onegrid.kafka")
        self._m_consumed = m.create_counter("onegrid_messages_consumed", description="records consumed")
        self._m_produced = m.create_counter("onegrid_messages_produced", description="records produced")
        self._m_dead = m.create_counter("onegrid_messages_dead_lettered", description="DLQ and quarantine")
        self._m_dropped = m.create_counter(
            "onegrid_messages_dropped_revoked", description="records of partitions no longer owned"
        )
        self._m_batch = m.create_histogram("onegrid_batch_seconds", unit="s", description="batch processing")
        telemetry.observe_gauge("onegrid_consumer_lag", self._observe_lag, meter_name="onegrid.kafka")

    # -- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish the current batch, commit and leave the group. Non-blocking."""
        self._stopping.set()

    @property
    def ready(self) -> bool:
        """Running and a member of its group; holding partitions is not required (standby)."""
        return self.running and self.joined

    async def run(self) -> None:
        """Consume until `stop()`. Raises `DlqLimitExceeded` or a fatal error, after leaving the group."""
        await self._join()
        self.running = True
        try:
            while not self._stopping.is_set():
                try:
                    await self._round()
                except KafkaError as exc:
                    if self._renew is None or not coordination_broken(exc):
                        raise
                    await self._rejoin(exc)
            if self._queue:
                log.info("stopped during retries; the unfinished batches will be processed again")
        finally:
            self.running = False
            try:
                await self._commit_pending()
            except Exception:
                log.exception("final commit failed; the last batch will be processed again")
            await self._consumer.stop()
            for tp in list(self._producers):
                await self._retire(tp)

    async def _join(self) -> None:
        await self._consumer.start()
        if self.config.topic_pattern is not None:
            self._consumer.subscribe(pattern=self.config.topic_pattern, listener=_Rebalance(self))
        else:
            self._consumer.subscribe(list(self.config.topics), listener=_Rebalance(self))

    async def _round(self) -> None:
        if self._unready:
            await self._acquire_unready()
        if self._queue and time.monotonic() >= self._retry_at:
            await self._drain()
        fresh = not self._queue  # nothing waits for a retry: what this round fetches may gather
        fetched = await self._consumer.getmany(
            timeout_ms=self._poll_timeout_ms(), max_records=self.config.batch_max_records
        )
        self._queue += self._batches(fetched)
        if fresh and self._queue:
            await self._gather()
        if self._queue and time.monotonic() >= self._retry_at:
            await self._drain()
        await self._maybe_tick()
        await self._maybe_commit()

    async def _rejoin(self, exc: BaseException) -> None:
        """The consumer's group coordination died inside the client (it never recovers by itself):
        give up every partition as a revoke does (batches fetched are dropped, exactly-once
        producers retired; what was not committed is read again by whoever owns it next) and join
        the group again with a fresh consumer."""
        assert self._renew is not None
        log.warning(
            "group coordination of %s broke (%s): rejoining with a fresh consumer", self.config.group_id, exc
        )
        await self._on_revoked(set(self.assigned) | set(self._unready) | set(self._producers))
        self._queue.clear()
        self._generation += 1
        self.joined = False
        try:
            await self._consumer.stop()
        except Exception:
            log.warning("stopping the broken consumer failed", exc_info=True)
        self._consumer = self._renew()
        await self._join()

    def _poll_timeout_ms(self) -> int:
        if not self._queue:
            return self.config.batch_timeout_ms
        wait_ms = int(max(0.0, self._retry_at - time.monotonic()) * 1000)
        return max(1, min(self.config.batch_timeout_ms, wait_ms))

    def _batches(self, fetched: dict[TopicPartition, list[Any]]) -> list[tuple[int, list[Record]]]:
        """Exactly once: one batch per partition (one transaction per partition's producer). Each
        batch carries the assignment generation it was fetched in."""
        gen = self._generation
        if self.config.exactly_once:
            return [(gen, list(rs)) for _, rs in sorted(fetched.items()) if rs]
        records: list[Record] = [r for rs in fetched.values() for r in rs]
        return [(gen, records)] if records else []

    async def _gather(self) -> None:
        """Under load, let the next wave gather: until `wave_interval_ms` after the last wave began
        (or a batch is full), keep fetching into the queued batches. Each wave costs a transaction
        per partition (exactly once: five requests and a marker on every output partition) or a
        handler call and its sends, whatever its size; records trickling in one at a time at a few
        hundred a second would otherwise each pay that alone, and the cost of the transactions, not
        of the records, would fill the cores. After a quiet spell nothing waits: the last wave began
        long ago. Only fresh fetches gather (never a batch waiting for a retry)."""
        interval_s = self.config.wave_interval_ms / 1000
        while not self._stopping.is_set() and not self._full():
            wait_ms = int((self._wave_began + interval_s - time.monotonic()) * 1000)
            if wait_ms <= 0:
                return
            more = await self._consumer.getmany(timeout_ms=wait_ms, max_records=self.config.batch_max_records)
            for batch in self._batches(more):
                self._merge(batch)

    def _full(self) -> bool:
        return any(len(records) >= self.config.batch_max_records for _, records in self._queue)

    def _merge(self, batch: tuple[int, list[Record]]) -> None:
        """Add a fetched batch to the queue: to the queued batch of the same partitions (exactly
        once: its partition; at least once: any) and generation while it has room, else after it.
        A partition's records stay in offset order: its later records go after its earlier ones."""
        gen, records = batch
        for i in range(len(self._queue) - 1, -1, -1):
            queued_gen, queued = self._queue[i]
            if self.config.exactly_once and (queued[0].topic, queued[0].partition) != (
                records[0].topic,
                records[0].partition,
            ):
                continue
            if queued_gen == gen and len(queued) + len(records) <= self.config.batch_max_records:
                self._queue[i] = (gen, queued + records)
                return
            break
        self._queue.append(batch)

    # -- processing --------------------------------------------------------------------------

    async def _drain(self) -> None:
        """Process queued batches in order, a wave at a time; on a retriable failure pause everything
        and come back."""
        while self._queue and not self._stopping.is_set():
            retry = await self._wave()
            if retry is not None:
                self._retry_at = time.monotonic() + retry
                self._pause_all()
                return
            self._backoff.reset()
        if not self._queue:
            self._resume_all()

    def _wave_size(self) -> int:
        """How many batches at the head of the queue form the next wave: exactly once, the batches
        of distinct partitions (one fetch's); at least once, one batch (it spans partitions)."""
        if not self.config.exactly_once:
            return 1
        seen: set[tuple[str, int]] = set()
        size = 0
        for _, records in self._queue:
            if records:
                tp = (records[0].topic, records[0].partition)
                if tp in seen:
                    break
                seen.add(tp)
            size += 1
        return size

    async def _wave(self) -> float | None:
        """Handle the wave's batches one after another, in order, and deliver them concurrently: each
        exactly-once batch commits its own transaction on its own partition's producer, so a fetch
        holding N partitions costs one commit's latency, not N. A handler may therefore run before
        an earlier batch of its wave has committed and run its `after_commit`: batches of different
        partitions must not depend on each other's in-memory state changes (state that spans
        partitions travels through Kafka, as it must between instances anyway).

        Returns the delay before a retry when a batch met a transient failure (that batch and those
        after it not yet handled stay queued; the others of the wave are done), else None."""
        self._wave_began = time.monotonic()
        size = self._wave_size()
        wave = self._queue[:size]
        left: list[tuple[int, list[Record]] | None] = list(wave)  # what stays queued, per position
        deliveries: list[tuple[int, list[Record], _Handled, asyncio.Task[int]]] = []
        guard = self._guard  # the DLQ limit checked over the wave's batches in order
        retry: float | None = None
        failure: BaseException | None = None
        for i, (gen, records) in enumerate(wave):
            batch = self._owned(records, gen)
            if not batch:
                left[i] = None
                continue
            try:
                handled = await self._begin(batch, gen=gen, guard=guard)
            except _Dropped:
                left[i] = None  # the partition's (new) owner reads these records again
                continue
            except _Retry as exc:
                retry = exc.delay
                break
            except BaseException as exc:
                failure = exc
                break
            guard = handled.guard
            task = asyncio.create_task(self._finish(handled), context=handled.context)
            deliveries.append((i, batch, handled, task))
        outcomes = await asyncio.gather(*(task for *_, task in deliveries), return_exceptions=True)
        for (i, batch, handled, _), outcome in zip(deliveries, outcomes, strict=True):
            if isinstance(outcome, _Retry):
                retry = outcome.delay if retry is None else max(retry, outcome.delay)
            elif isinstance(outcome, _Dropped):
                left[i] = None  # the partition's (new) owner reads these records again
            elif isinstance(outcome, BaseException):
                failure = failure or outcome
            elif outcome < len(batch):
                left[i] = (handled.gen, batch[outcome:])  # split at a poison record: the rest next
            else:
                left[i] = None
        self._queue[:size] = [b for b in left if b is not None]
        if failure is not None:
            raise failure
        return retry

    async def _maybe_tick(self) -> None:
        interval = self.config.tick_interval_s
        if interval is None or not self.assigned or self._queue or time.monotonic() < self._next_tick:
            return
        self._next_tick = time.monotonic() + interval
        # As a wave: each partition's tick handled in turn, their transactions committed together.
        # A tick with nothing to deliver ends there: no span, no transaction (ticks can be frequent).
        deliveries = []
        gen = self._generation
        for tp in sorted(self.assigned - self._fenced - self._unready):
            started = time.perf_counter()
            try:
                result = await self._run_tick(tp)
            except Exception:
                continue  # transient, or backpressure: the next interval tries again
            if not (result.outputs or result.dead_letters or result.after_commit):
                continue
            if not self._current(tp, gen):
                continue  # revoked while it ran
            span = self._batch_span([])
            handled = _Handled([], gen, tp, result, self._guard, span, started, _context_of(span))
            deliveries.append(asyncio.create_task(self._finish(handled), context=handled.context))
        for outcome in await asyncio.gather(*deliveries, return_exceptions=True):
            if isinstance(outcome, BaseException) and not isinstance(outcome, (_Dropped, _Retry)):
                raise outcome

    def _batch_span(self, records: list[Record]) -> Span:
        """The span of a batch (or, without records, of a tick), open until its delivery ends."""
        return self._tracer.start_span(
            f"process {','.join(sorted({r.topic for r in records}))}" if records else "tick",
            context=telemetry.extract(records[0].headers) if len(records) == 1 else None,
            kind=SpanKind.CONSUMER,
            links=telemetry.batch_links([r.headers for r in records]),
            attributes={
                "messaging.system": "kafka",
                "messaging.consumer.group.name": self.config.group_id,
                "messaging.batch.message_count": len(records),
            },
        )

    async def _begin(self, records: list[Record], *, gen: int, guard: DlqGuard) -> _Handled:
        """Handle the batch (or its part up to and including a poison record) under its span, which
        stays open until `_finish` has delivered it; `guard`: the DLQ limit as it stands before this
        batch. Raises `_Retry` on a transient failure, `_Dropped` when the partition is no longer
        ours."""
        self._m_consumed.add(len(records), {"group": self.config.group_id})
        started = time.perf_counter()
        span = self._batch_span(records)
        try:
            with trace.use_span(span, end_on_exit=False):
                result, done = await self._handle(records)
                records = records[:done]
                after = guard.after(self._dead_lettered(records, result.dead_letters))
                tp = TopicPartition(records[0].topic, records[0].partition) if records else None
                if self.config.exactly_once and tp is not None and not self._current(tp, gen):
                    raise _Dropped  # revoked (or re-read) while the handler ran
            # The delivery's task runs in the span's context: the batch's span stays its parent.
            return _Handled(records, gen, tp, result, after, span, started, _context_of(span))
        except BaseException as exc:
            self._failed(span, exc)

    async def _finish(self, handled: _Handled) -> int:
        """Deliver a handled batch; returns how many records were delivered (raises as `_begin`)."""
        try:
            await self._deliver(handled.records, handled.result, handled.tp)
            # Counted once, when the batch's result is kept (a retried batch is not counted twice).
            # Batches of one wave land in any order: a limit the wave's order did not reach can
            # still be reached here, after the delivery (the loop then stops, nothing is lost).
            self._guard = self._guard.after(self._dead_lettered(handled.records, handled.result.dead_letters))
        except BaseException as exc:
            self._failed(handled.span, exc)
        self._m_batch.record(time.perf_counter() - handled.started, {"group": self.config.group_id})
        handled.span.end()
        return len(handled.records)

    def _failed(self, span: Span, exc: BaseException) -> NoReturn:
        """End the batch's span and raise what the loop makes of `exc`: `_Retry` for a transient
        failure or backpressure, `_Dropped` and the DLQ limit as they are, anything else recorded."""
        try:
            if isinstance(exc, Backpressure):
                delay = self._backoff.next_delay()
                span.add_event("backpressure", {"retry_in_s": delay})
                raise _Retry(delay) from exc
            if isinstance(exc, (_Dropped, _Retry, DlqLimitExceeded)) or not isinstance(exc, Exception):
                raise exc
            if is_transient(exc):
                delay = self._backoff.next_delay()
                log.warning("transient failure, retrying batch in %.2fs: %r", delay, exc)
                raise _Retry(delay) from exc
            span.record_exception(exc)
            span.set_status(trace.StatusCode.ERROR)
            raise exc
        finally:
            span.end()

    def _current(self, tp: TopicPartition, gen: int) -> bool:
        """Whether records of `tp` fetched in generation `gen` may still be processed."""
        return tp in self.assigned and tp not in self._fenced and gen >= self._since.get(tp, 0)

    def _owned(self, records: list[Record], gen: int) -> list[Record]:
        kept = [r for r in records if self._current(TopicPartition(r.topic, r.partition), gen)]
        if len(kept) < len(records):
            self._m_dropped.add(len(records) - len(kept), {"group": self.config.group_id})
            log.info("dropped %d records of partitions no longer assigned", len(records) - len(kept))
        return kept

    def _pause_all(self) -> None:
        if self.assigned:
            self._consumer.pause(*self.assigned)

    def _resume_all(self) -> None:
        resumable = self.assigned - self._fenced - self._unready
        if resumable:
            self._consumer.resume(*resumable)

    async def _run_tick(self, tp: TopicPartition) -> BatchResult:
        try:
            if self._tick is not None:
                return await self._tick(tp)
            return await self._handler([])
        except Backpressure:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise
            log.exception("tick failed; it runs again at the next interval")
            return BatchResult()

    async def _handle(self, records: Sequence[Record]) -> tuple[BatchResult, int]:
        """The handler's result for `records`, or, when a record in it is poison, for the longest
        prefix that succeeds plus that record dead-lettered; returns (result, records covered).

        The batch is split AT the poison record, not replayed record by record: the records before
        it are handled together, as they would have been, so a record that depends on an earlier
        one of the same batch (a CAP Update of an Alert, the next packet of a station) still sees
        it. The records after it are handled next, on the state their predecessors committed.

        A record is poison only when its failure happens again: the prefix ending with it is run once
        more before it is set aside. An error no one knew to be transient (a client library's state
        after the database went away under it) does not happen twice in a row, and a batch of one
        record would otherwise be dead-lettered on a single failure."""
        try:
            return await self._handler(records), len(records)
        except Backpressure:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise
            failed_at, failure = len(records), exc
        ok_up_to, result = 0, BatchResult()
        # Binary search for the longest prefix that succeeds (handlers are idempotent by contract).
        while failed_at - ok_up_to > 1:
            mid = (ok_up_to + failed_at) // 2
            try:
                result, ok_up_to = await self._handler(records[:mid]), mid
            except Backpressure:
                raise
            except Exception as exc:
                if is_transient(exc):
                    raise
                failed_at, failure = mid, exc
        poison = records[ok_up_to]
        try:
            again = await self._handler(records[: ok_up_to + 1])
        except Backpressure:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise
            failure = exc
        else:
            log.warning(
                "%s[%d]@%d failed once and not again (%r): not poison",
                poison.topic,
                poison.partition,
                poison.offset,
                failure,
            )
            return again, ok_up_to + 1
        log.warning("poison record %s[%d]@%d: %r", poison.topic, poison.partition, poison.offset, failure)
        result.dead_letters.append(
            DeadLetter(poison, f"unhandled.{type(failure).__name__}", str(failure) or repr(failure))
        )
        return result, ok_up_to + 1

    @staticmethod
    def _dead_lettered(records: Sequence[Record], dead: list[DeadLetter]) -> list[bool]:
        dlq = {(d.record.topic, d.record.partition, d.record.offset) for d in dead if d.kind == "dlq"}
        return [(r.topic, r.partition, r.offset) in dlq for r in records]

    def _dead_letter_outputs(self, dead: list[DeadLetter]) -> list[OutRecord]:
        out = []
        for d in dead:
            self._m_dead.add(1, {"group": self.config.group_id, "reason": d.reason, "kind": d.kind})
            topic = self.config.quarantine_topic if d.kind == "quarantine" else self.config.dlq_topic
            if topic is None:
                raise RuntimeError(f"no {d.kind} topic configured for {d.reason}: {d.detail}")
            prefix = "quarantine" if d.kind == "quarantine" else "dlq"
            out.append(dead_letter_record(d, topic=topic, service=self.config.service, prefix=prefix))
        return out

    async def _deliver(
        self, records: Sequence[Record], result: BatchResult, tp: TopicPartition | None
    ) -> None:
        outputs = result.outputs + self._dead_letter_outputs(result.dead_letters)
        offsets: dict[TopicPartition, int] = {}
        for r in records:
            rtp = TopicPartition(r.topic, r.partition)
            offsets[rtp] = max(offsets.get(rtp, 0), r.offset + 1)
        if self.config.exactly_once:
            if outputs or offsets:
                assert tp is not None
                await self._transact(tp, outputs, offsets)
        else:
            if outputs:
                if self._producer is None:
                    raise RuntimeError("handler returned records to produce but the loop has no producer")
                await send_all(self._producer, outputs)
            self._pending.update({p: o for p, o in offsets.items() if p in self.assigned})
        self._next_offset.update(offsets)
        for apply in result.after_commit:
            apply()
        if outputs:
            self._m_produced.add(len(outputs), {"group": self.config.group_id})

    async def _transact(
        self, tp: TopicPartition, outputs: list[OutRecord], offsets: dict[TopicPartition, int]
    ) -> None:
        producer = self._producers.get(tp)
        if producer is None:
            raise _Dropped  # retired meanwhile; the partition is read again once it has one
        self._in_flight.add(producer)
        try:
            await self._commit_transaction(tp, producer, outputs, offsets)
        finally:
            self._in_flight.discard(producer)
            if self._producers.get(tp) is not producer:
                # Retired by a revoke (or a fence) while its transaction ran: stopped now that
                # nothing waits on its sender any more.
                await self._stop_producer(tp, producer)

    async def _commit_transaction(
        self,
        tp: TopicPartition,
        producer: AIOKafkaProducer,
        outputs: list[OutRecord],
        offsets: dict[TopicPartition, int],
    ) -> None:
        try:
            async with producer.transaction():
                await send_all(producer, outputs)
                if offsets:
                    await producer.send_offsets_to_transaction(
                        {p: OffsetAndMetadata(o, "") for p, o in offsets.items()}, self.config.group_id
                    )
        except ProducerFenced:
            if self._producers.get(tp) is not producer:
                raise _Dropped from None  # the partition was revoked meanwhile; its state is the group's
            log.warning("%s[%d]: fenced by its new owner; batch dropped", tp.topic, tp.partition)
            self._fenced.add(tp)
            self._pause_if_held(tp)
            await self._retire(tp)
            raise _Dropped from None
        except Exception as exc:
            if tp not in self.assigned or self._producers.get(tp) is not producer:
                raise _Dropped from exc  # revoked (and its producer retired) during the transaction
            txn = getattr(producer, "_txn_manager", None)
            if txn is not None and txn.is_fatal_error():
                # A producer in a fatal state never commits again: the next attempt starts a new one
                # and reads the partition again from its committed offset.
                log.warning(
                    "%s[%d]: producer failed for good (%r); replacing it", tp.topic, tp.partition, exc
                )
                await self._retire(tp)
                if self._pause_if_held(tp):
                    self._unready.add(tp)
                raise _Dropped from exc
            raise

    def _pause_if_held(self, tp: TopicPartition) -> bool:
        """Pause `tp` if the member still holds it. Its assignment can go before the rebalance's
        revoke callback runs (a new topic matching the subscription pattern replaces it at once), and
        aiokafka refuses to pause a partition the member no longer holds: the rebalance's revoke and
        assignment then decide what comes next."""
        if tp not in self._consumer.assignment():
            log.info("%s[%d] no longer held; left to the rebalance", tp.topic, tp.partition)
            return False
        self._consumer.pause(tp)
        return True

    # -- producers per partition ---------------------------------------------------------------

    async def _acquire_unready(self) -> None:
        """Every assigned partition not yet ours: first each one's producer is started (fencing its
        previous owner), then each is taken up (`prepare`, then read from its committed offset); a
        partition that fails stays paused and is tried again on the next round.

        All are fenced before any is prepared: a `prepare` catching a shared state topic up
        (GlobalTable.sync) waits for every transaction open on it, and one a dead owner of another
        of these partitions left open ends only when that partition's producer fences it. One at a
        time, the first `prepare` would wait for the second fence until the coordinator timed the
        transaction out."""
        assert self._transactional is not None
        async with self._acquiring:
            for tp in sorted(self._unready):
                if tp not in self._consumer.assignment():
                    self._unready.discard(tp)
                elif tp not in self._producers:
                    await self._acquiring_step(tp, self._fence)
            for tp in sorted(self._unready):
                if tp in self._producers:
                    await self._acquiring_step(tp, self._take_up)

    async def _fence(self, tp: TopicPartition) -> None:
        self._producers[tp] = await self._start_producer(tp)

    async def _acquiring_step(
        self, tp: TopicPartition, step: Callable[[TopicPartition], Awaitable[None]]
    ) -> None:
        try:
            await step(tp)
        except Exception as exc:
            if tp not in self._consumer.assignment():
                # Revoked while it was being taken up (aiokafka refuses to seek or pause a partition
                # the member no longer holds): the rebalance's own assignment decides what comes next.
                log.info("%s[%d] revoked while being taken up (%r)", tp.topic, tp.partition, exc)
                self._unready.discard(tp)
                return
            log.exception("taking up %s[%d] failed; trying again", tp.topic, tp.partition)
            self._unready.add(tp)
            self._consumer.pause(tp)

    async def _take_up(self, tp: TopicPartition) -> None:
        """Read `tp`, fenced already, from its committed offset, after `prepare`."""
        revokes = self._revokes
        # The committed offset is read after the fence: no earlier owner can move it any more.
        committed = await self._consumer.committed(tp)
        if committed is None:
            await self._consumer.seek_to_beginning(tp)
        if self._prepare is not None:
            await self._prepare(tp)
        if revokes != self._revokes or tp not in self._consumer.assignment():
            return  # a rebalance began meanwhile: its assignment decides (and acquires again)
        # No await from here on: whatever was fetched before this point came from the old position.
        if committed is not None:
            self._consumer.seek(tp, committed)
        self._generation += 1
        self._since[tp] = self._generation
        self._unready.discard(tp)
        self._fenced.discard(tp)
        self.assigned.add(tp)
        if not self._queue:
            self._consumer.resume(tp)

    async def _start_producer(self, tp: TopicPartition) -> AIOKafkaProducer:
        """`tp`'s transactional producer, started (its InitProducerId fences the previous owner). A
        start that fails or outlasts `producer_start_timeout_s` (the transaction coordinator is
        unreachable: aiokafka retries it forever) stops the producer again and raises."""
        assert self._transactional is not None
        producer = self._transactional(tp)
        try:
            await asyncio.wait_for(producer.start(), self.config.producer_start_timeout_s)
        except BaseException:
            await self._stop_producer(tp, producer)
            raise
        return producer

    async def _retire(self, tp: TopicPartition) -> None:
        """`tp` has no producer any more; its producer is stopped unless a transaction on it is in
        flight (then the batch stops it when that ends: stopping it under the transaction would leave
        the batch waiting for ever on replies its sender can no longer receive)."""
        producer = self._producers.pop(tp, None)
        if producer is not None and producer not in self._in_flight:
            await self._stop_producer(tp, producer)

    @staticmethod
    async def _stop_producer(tp: TopicPartition, producer: AIOKafkaProducer) -> None:
        try:
            await producer.stop()
        except Exception:
            log.exception("stopping the producer of %s[%d] failed", tp.topic, tp.partition)

    # -- commits and rebalances --------------------------------------------------------------

    async def _maybe_commit(self) -> None:
        if self._pending and time.monotonic() - self._last_commit >= self.config.commit_interval_s:
            await self._commit_pending()

    async def _commit_pending(self, only: set[TopicPartition] | None = None) -> None:
        owned = self.assigned if only is None else self.assigned & only
        offsets = {tp: o for tp, o in self._pending.items() if tp in owned}
        try:
            if offsets:
                await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # Evicted (a long stall), or the consumer's assignment already dropped for a rebalance this
            # loop has not been told of yet (a pattern subscription matching a new topic resets it at
            # once; the revoke comes with the rejoin): the partitions' next owner, maybe this loop,
            # processes these records again.
            log.warning(
                "commit refused, the group moved on; %d partitions will be re-read: %s", len(offsets), exc
            )
        for tp in offsets:
            self._pending.pop(tp, None)
        self._last_commit = time.monotonic()

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        # Never waits for a batch: one in flight for a revoked partition is dropped when it ends
        # (exactly once: its transaction is fenced or refused), queued ones are dropped now.
        try:
            await self._commit_pending(only=revoked)
        except Exception:
            log.exception("commit on revoke failed; those records will be processed again")
        self._revokes += 1
        self.assigned -= revoked
        for tp in revoked:
            self._pending.pop(tp, None)
            self._next_offset.pop(tp, None)
            self._fenced.discard(tp)
            self._unready.discard(tp)
        for tp in revoked:
            await self._retire(tp)

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        current = set(self._consumer.assignment())
        if self.config.exactly_once:
            # Each partition becomes ours (self.assigned) once its producer runs and it is re-read.
            # That happens in the loop's next round (`_acquire_unready`), not here: a producer's
            # init_transactions per partition plus the handler's `prepare` (catching state up) can
            # outlast the group's rebalance timeout, and a member still inside this callback then
            # loses its membership and the group rebalances again, over and over.
            self.assigned &= current
            for tp in sorted(current):
                self._fenced.discard(tp)
                if tp not in self.assigned:
                    self._consumer.pause(tp)
                    self._unready.add(tp)
        else:
            # Batches fetched before a partition's revoke are dropped when it comes back (it is read
            # again from the committed offset), as in exactly-once mode.
            newly = current - self.assigned
            if newly:
                self._generation += 1
                self._since.update(dict.fromkeys(newly, self._generation))
            self.assigned = current
        if self._queue:
            self._pause_all()
        self.joined = True
        log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))

    async def caught_up(self, tp: TopicPartition) -> bool:
        """Whether `tp` is this loop's and read to its end, with nothing of it waiting: for a tick to
        tell a partition with nothing to read from one whose records are still to come."""
        if tp not in self.assigned or tp in self._fenced or tp not in self._consumer.assignment():
            return False
        if any(rs and (rs[0].topic, rs[0].partition) == (tp.topic, tp.partition) for _, rs in self._queue):
            return False
        end = self._end(tp)
        if end is None:
            return False  # nothing fetched from it yet
        return bool(await self._consumer.position(tp) >= end)

    def read_to_end(self, tp: TopicPartition, next_offset: int) -> bool:
        """Whether `next_offset` is at `tp`'s end as last fetched (its last stable offset when reading
        committed records): a batch ending just before it left nothing of `tp` unread. False for a
        partition the member no longer holds (the client refuses to answer for one)."""
        if tp not in self._consumer.assignment():
            return False
        end = self._end(tp)
        return end is not None and next_offset >= end

    def _end(self, tp: TopicPartition) -> int | None:
        """`tp`'s end as last fetched: its last stable offset when reading committed records (-1
        otherwise), else its high watermark; None before anything was fetched from it."""
        end = self._consumer.last_stable_offset(tp)
        if end is None or end < 0:
            end = self._consumer.highwater(tp)
        return end  # type: ignore[no-any-return]

    def _observe_lag(self, _options: Any) -> list[Any]:
        from opentelemetry.metrics import Observation

        obs = []
        for tp in list(self.assigned):
            hw = self._consumer.highwater(tp)
            nxt = self._next_offset.get(tp)
            if hw is not None and nxt is not None:
                obs.append(
                    Observation(
                        max(0, hw - nxt),
                        {"group": self.config.group_id, "topic": tp.topic, "partition": tp.partition},
                    )
                )
        return obs


def _context_of(span: Span) -> contextvars.Context:
    """A copy of the current context with `span` current in it (for the task that delivers it)."""
    with trace.use_span(span, end_on_exit=False):
        return contextvars.copy_context()


@dataclass
class _Handled:
    """A batch its handler is done with, waiting for (or in) its delivery."""

    records: list[Record]  # delivered: up to and including a poison record
    gen: int
    tp: TopicPartition | None  # exactly once: the partition whose transaction delivers it
    result: BatchResult
    guard: DlqGuard  # the DLQ limit as it stands after this batch
    span: Span
    started: float
    context: contextvars.Context


class _Retry(Exception):
    def __init__(self, delay: float) -> None:
        super().__init__(delay)
        self.delay = delay
