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
- A handler exception that is not transient is isolated to the record that causes it (the batch is
  replayed one record at a time) and that record is dead-lettered with reason `unhandled.<Type>`.
- Transient failures and `Backpressure` retry the same batch with capped backoff.
- `BatchResult.after_commit` callbacks run only after the batch is committed (exactly-once mode) or
  its outputs acknowledged (at-least-once mode): the place to apply in-memory state changes.
- Never commits a partition that was revoked; on revoke the in-flight batch finishes first.
- `stop()` (SIGTERM): the current batch finishes, offsets are committed, the consumer leaves its group.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from onegrid import telemetry
from onegrid.kafka.policy import Backoff, Backpressure, DlqGuard, is_transient
from onegrid.kafka.producer import send_all
from onegrid.kafka.records import BatchResult, DeadLetter, OutRecord, Record, dead_letter_record
from onegrid.settings import KafkaSettings

log = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence[Record]], Awaitable[BatchResult]]


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
    # Every tick_interval_s (while partitions are assigned) the handler is called with NO records:
    # time-driven work (a station gone silent, a deadline) then produces in the same way, and in
    # exactly-once mode in its own transaction.
    tick_interval_s: float | None = None


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


class _Interrupted(Exception):
    """Stop was asked while a batch was being retried; it is left uncommitted."""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: ConsumerLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._loop._on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._loop._on_assigned(set(assigned))


class ConsumerLoop:
    def __init__(
        self,
        *,
        consumer: AIOKafkaConsumer,
        handler: BatchHandler,
        config: LoopConfig,
        producer: AIOKafkaProducer | None = None,
    ) -> None:
        if config.exactly_once and producer is None:
            raise ValueError("exactly_once needs a transactional producer")
        self._consumer = consumer
        self._handler = handler
        self._producer = producer
        self.config = config
        self._lock = asyncio.Lock()
        self._pending: dict[TopicPartition, int] = {}
        self._next_offset: dict[TopicPartition, int] = {}
        self._last_commit = time.monotonic()
        self._next_tick = time.monotonic() + (config.tick_interval_s or 0)
        self._stopping = asyncio.Event()
        self._guard = DlqGuard(max_ratio=config.dlq_max_ratio, max_consecutive=config.dlq_max_consecutive)
        self.assigned: set[TopicPartition] = set()
        self.running = False
        self._tracer = telemetry.tracer("onegrid.kafka")
        m = telemetry.meter("onegrid.kafka")
        self._m_consumed = m.create_counter("onegrid_messages_consumed", description="records consumed")
        self._m_produced = m.create_counter("onegrid_messages_produced", description="records produced")
        self._m_dead = m.create_counter("onegrid_messages_dead_lettered", description="DLQ and quarantine")
        self._m_batch = m.create_histogram("onegrid_batch_seconds", unit="s", description="batch processing")
        m.create_observable_gauge("onegrid_consumer_lag", callbacks=[self._observe_lag])

    # -- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish the current batch, commit and leave the group. Non-blocking."""
        self._stopping.set()

    @property
    def ready(self) -> bool:
        return self.running and bool(self.assigned)

    async def run(self) -> None:
        """Consume until `stop()`. Raises `DlqLimitExceeded` or a fatal error, after leaving the group."""
        await self._consumer.start()
        if self.config.topic_pattern is not None:
            self._consumer.subscribe(pattern=self.config.topic_pattern, listener=_Rebalance(self))
        else:
            self._consumer.subscribe(list(self.config.topics), listener=_Rebalance(self))
        self.running = True
        try:
            while not self._stopping.is_set():
                fetched = await self._consumer.getmany(
                    timeout_ms=self.config.batch_timeout_ms, max_records=self.config.batch_max_records
                )
                records: list[Record] = [r for rs in fetched.values() for r in rs]
                if records:
                    async with self._lock:
                        await self._process(records)
                await self._maybe_tick()
                await self._maybe_commit()
        except _Interrupted:
            log.info("stopped during retries; the unfinished batch will be processed again")
        finally:
            self.running = False
            try:
                async with self._lock:
                    await self._commit_pending()
            except Exception:
                log.exception("final commit failed; the last batch will be processed again")
            await self._consumer.stop()

    # -- processing --------------------------------------------------------------------------

    async def _maybe_tick(self) -> None:
        interval = self.config.tick_interval_s
        if interval is None or not self.assigned or time.monotonic() < self._next_tick:
            return
        self._next_tick = time.monotonic() + interval
        async with self._lock:
            await self._process([])

    async def _process(self, records: list[Record]) -> None:
        backoff = Backoff()
        self._m_consumed.add(len(records), {"group": self.config.group_id})
        links = telemetry.batch_links([r.headers for r in records])
        parent = telemetry.extract(records[0].headers) if len(records) == 1 else None
        while True:
            started = time.perf_counter()
            with self._tracer.start_as_current_span(
                f"process {','.join(sorted({r.topic for r in records}))}" if records else "tick",
                context=parent,
                kind=SpanKind.CONSUMER,
                links=links,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.consumer.group.name": self.config.group_id,
                    "messaging.batch.message_count": len(records),
                },
            ) as span:
                try:
                    result = await self._handle(records)
                    self._check_guard(records, result.dead_letters)
                    await self._deliver(records, result)
                    self._m_batch.record(time.perf_counter() - started, {"group": self.config.group_id})
                    return
                except Backpressure:
                    delay = backoff.next_delay()
                    span.add_event("backpressure", {"retry_in_s": delay})
                except Exception as exc:
                    if not is_transient(exc):
                        span.record_exception(exc)
                        span.set_status(trace.StatusCode.ERROR)
                        raise
                    delay = backoff.next_delay()
                    log.warning("transient failure, retrying batch in %.2fs: %r", delay, exc)
            if self._stopping.is_set():
                # Leave without committing: the batch is processed again after restart.
                raise _Interrupted
            await asyncio.sleep(delay)

    async def _handle(self, records: Sequence[Record]) -> BatchResult:
        try:
            return await self._handler(records)
        except Backpressure:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise
            if not records:
                log.exception("tick failed; it runs again at the next interval")
                return BatchResult()
            if len(records) == 1:
                log.warning(
                    "poison record %s[%d]@%d: %r",
                    records[0].topic,
                    records[0].partition,
                    records[0].offset,
                    exc,
                )
                dl = DeadLetter(records[0], f"unhandled.{type(exc).__name__}", str(exc) or repr(exc))
                return BatchResult(dead_letters=[dl])
            # Isolate the poison record: replay one by one (handlers are idempotent by contract).
            result = BatchResult()
            for r in records:
                result.extend(await self._handle([r]))
            return result

    def _check_guard(self, records: Sequence[Record], dead: list[DeadLetter]) -> None:
        dlq = {(d.record.topic, d.record.partition, d.record.offset) for d in dead if d.kind == "dlq"}
        self._guard.observe([(r.topic, r.partition, r.offset) in dlq for r in records])

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

    async def _deliver(self, records: Sequence[Record], result: BatchResult) -> None:
        outputs = result.outputs + self._dead_letter_outputs(result.dead_letters)
        offsets: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
        if outputs and self._producer is None:
            raise RuntimeError("handler returned records to produce but the loop has no producer")
        if self.config.exactly_once and (outputs or offsets):
            assert self._producer is not None
            async with self._producer.transaction():
                await send_all(self._producer, outputs)
                if offsets:
                    await self._producer.send_offsets_to_transaction(
                        {tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()}, self.config.group_id
                    )
        elif not self.config.exactly_once:
            if outputs:
                assert self._producer is not None
                await send_all(self._producer, outputs)
            self._pending.update(offsets)
        self._next_offset.update(offsets)
        for apply in result.after_commit:
            apply()
        if outputs:
            self._m_produced.add(len(outputs), {"group": self.config.group_id})

    # -- commits and rebalances --------------------------------------------------------------

    async def _maybe_commit(self) -> None:
        if self._pending and time.monotonic() - self._last_commit >= self.config.commit_interval_s:
            async with self._lock:
                await self._commit_pending()

    async def _commit_pending(self, only: set[TopicPartition] | None = None) -> None:
        owned = self.assigned if only is None else self.assigned & only
        offsets = {tp: o for tp, o in self._pending.items() if tp in owned}
        if offsets:
            await self._consumer.commit(offsets)
        for tp in offsets:
            self._pending.pop(tp, None)
        self._last_commit = time.monotonic()

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:  # waits for the batch in flight
            try:
                await self._commit_pending(only=revoked)
            except Exception:
                log.exception("commit on revoke failed; those records will be processed again")
            for tp in revoked:
                self._pending.pop(tp, None)
                self._next_offset.pop(tp, None)
            self.assigned -= revoked

    def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        self.assigned = set(self._consumer.assignment())
        log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))

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
