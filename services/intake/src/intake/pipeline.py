"""The intake pipeline on Kafka: a batch of legacy records in, case events, dead letters, quarantine
and state changes out, all in one transaction (the loop runs it exactly once).

- Case events go to `cases.v1`, keyed by case id, as CloudEvents (binary mode); each carries the
  trace of the record it came from.
- A malformed record goes to `intake.dlq.v1`, a well-formed one that cannot be mapped yet to
  `intake.quarantine.v1` (both with the original bytes and the reason).
- HJ 212 episode state changes go to the compacted `intake.state.v1`, so a restart resumes them.
- What became of every record that was not set aside (its case events' types and cases, or a
  measurement, or a duplicate) goes to `intake.ledger.v1`, one entry per input partition: the ledger's
  accounts (intake.domain.ledger), exactly once because they share the transaction.
- With a correlation topic (the service: `intake.correlate.v1`), a record whose reports may join
  another network's case is not decided here: it is forwarded to the correlation stage (`correlate`,
  intake.domain.correlate), with a watermark of its source partition, and that stage writes its case
  events and its ledger account. Each record is accounted by the stage that decides it, once.
In-memory state (case book, episode slices, correlation queues) changes only after the transaction
commits.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from opentelemetry import trace

from intake.cap_geometry import CapGeometry
from intake.domain.correlate import (
    CITY_REGION,
    IN_PLACE_FEEDS,
    CorrelationQueue,
    Forwarded,
    OrderKey,
    Release,
    Source,
    Watermark,
    decode_forwarded,
    decode_watermark,
    encode,
    marks_value,
    order_keys,
    order_of,
    settle,
)
from intake.domain.correlation import NEVER_MERGED, CaseBook
from intake.domain.errors import IntakeError, Quarantined
from intake.domain.ledger import entry, outcome_of, progress_entry
from intake.domain.normalize import Provenance
from intake.domain.process import (
    DUPLICATE,
    LEGACY_FEEDS,
    Inbound,
    Intake,
    Outcome,
    decode_seen,
    observe_event,
)
from intake.domain.report import Intent
from onegrid import telemetry
from onegrid.envelope import ce_headers, header_dict
from onegrid.kafka import BatchResult, DeadLetter, OutRecord, Record
from onegrid.kafka.policy import Backpressure
from onegrid.topics import (
    CASES,
    GRID_REGISTRY,
    INTAKE_CORRELATE,
    INTAKE_CORRELATE_STATE,
    INTAKE_LEDGER,
    INTAKE_STATE,
)
from onegrid_contracts.case_event import CE_TYPES, CaseEvent, encode_case_event

SOURCE = "/onegrid/intake"
_STAGE = {"place": "enrich", "crosswalk": "map", "correlation": "correlate", "registry": "map"}


def stage_of(error: IntakeError) -> str:
    return _STAGE.get(error.reason.split(".")[0], "parse")


def event_record(
    ev: CaseEvent,
    parent_headers: Sequence[tuple[str, bytes]] | None,
    topic: str = CASES,
    context: Sequence[tuple[str, bytes]] | None = None,
) -> OutRecord:
    """The case event as a CloudEvent record, carrying the trace of the record it came from, or,
    when that has none, `context`: the trace headers of the current span (`batch_context()`,
    injected once per batch by the caller: one injection cost ~6 µs, once per event it showed in the
    profile of the consumer loop). Without `context` they are injected here."""
    case_id = str(ev.case_id)
    headers = ce_headers(
        type=CE_TYPES[ev.event_type],
        source=SOURCE,
        id=str(ev.event_id),
        subject=case_id,
        time=ev.times.received_at,
        extensions={"network": ev.source.network},
    )
    parent = [(k, v) for k, v in (parent_headers or ()) if k in ("traceparent", "tracestate")]
    headers += parent or (batch_context() if context is None else context)
    # Not validated again here: the events intake builds are proven to decode by its tests
    # (tests/unit/intake/test_events_decode.py), and a second decode per event cost more than encoding.
    data = encode_case_event(ev, validate=False)
    return OutRecord(topic, data, key=case_id.encode(), headers=headers)


def batch_context() -> list[tuple[str, bytes]]:
    """The current span's trace headers, for the events of a batch whose records carry none."""
    return telemetry.inject([])


@dataclass(frozen=True)
class IntakeTopics:
    """The topics the pipeline reads and writes (the catalogue's by default; tests use their own)."""

    feeds: dict[str, str] = field(default_factory=lambda: dict(LEGACY_FEEDS))  # topic -> feed
    cases: str = CASES
    state: str = INTAKE_STATE
    # None: no ledger entries (tests on topics of their own); the service writes INTAKE_LEDGER.
    ledger: str | None = None
    # None: every report is decided where its record is read, which is right for ONE instance only
    # (tests on topics of their own); the service correlates on INTAKE_CORRELATE.
    correlate: str | None = None
    # The correlation stage's state changelog (with `correlate`).
    correlate_state: str | None = None

    @classmethod
    def catalogue(cls) -> IntakeTopics:
        return cls(ledger=INTAKE_LEDGER, correlate=INTAKE_CORRELATE, correlate_state=INTAKE_CORRELATE_STATE)

    @property
    def changelog(self) -> str:
        """Where the correlation stage's state goes."""
        return self.correlate_state or self.state


@dataclass(frozen=True)
class _Origin:
    """The legacy record a forwarded one stands for (what a quarantine copy names)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    timestamp: int


class IntakePipeline:
    def __init__(
        self,
        intake: Intake,
        *,
        topics: IntakeTopics | None = None,
        ready: Callable[[], bool] = lambda: True,
        settle: Callable[[float], Awaitable[bool]] | None = None,
    ) -> None:
        """`ready`: whether the registry view holds the registry at all; `settle(timeout_s)`: waits up
        to that long for it to hold everything committed to the registry so far (the registry
        table's `until_current`), false if it does not by then."""
        self.intake = intake
        self.ready = ready
        self.settle = settle
        self.settle_s = 5.0  # then the batch is retried with backoff (Backpressure): nothing is lost
        self.topics = topics or IntakeTopics()
        # Stream time per HJ 212 partition: the latest broker timestamp committed from it. Silence is
        # judged on it, per partition, by the partition's owner, for the stations of that partition
        # (each slice records the partition its station's packets come from).
        self.stream_time: dict[tuple[str, int], datetime] = {}
        # CAP shapes computed off the event loop with a time limit (set by the composition root).
        self.cap_geometry: CapGeometry | None = None
        # -- the correlation stage (topics.correlate) --
        # Decided there: their own case book, which only that stage changes, in its order.
        self.book = CaseBook(windows=intake.book.windows, keep_sources=intake.book.keep_sources)
        # Per forwarding source partition: (stream time ms, next offset), as last committed.
        self.marks: dict[tuple[str, int], tuple[int, int]] = {}
        # Every source partition whose watermark the correlation stage waits for (set at start).
        self.sources: frozenset[Source] = frozenset()
        # Whether the loop has read a partition to its end (set by the composition root): an idle
        # partition's watermark advances to the clock, else nothing would ever be decided.
        self.caught_up: Callable[[TopicPartition], Awaitable[bool]] | None = None
        # Whether a partition's end (as last fetched) is at the given offset: a batch that reads a
        # partition to its end moves the partition's watermark on to the clock, as an idle tick does
        # (set by the composition root; without it a batch's watermark is its last record's key).
        self.read_to_end: Callable[[TopicPartition, int], bool] | None = None
        self.queues: dict[int, CorrelationQueue] = {}  # per owned correlation partition: live
        self.committed_queues: dict[int, CorrelationQueue] = {}  # every partition, as committed
        self.silence_check_s = 0.0
        # An idle partition's watermark goes out at least this often, and at its next tick when the
        # correlation stage holds a record it has not passed (`_awaited`).
        self.watermark_interval_s = 1.0
        self._last_idle_mark: dict[tuple[str, int], float] = {}
        self._next_silence: dict[tuple[str, int], float] = {}
        self._m_outcomes = telemetry.meter("intake").create_counter(
            "intake_records", description="legacy records by feed and outcome reason"
        )

    async def handle(self, records: Sequence[Record]) -> BatchResult:
        if not records:
            return BatchResult()  # time-driven work runs per partition: `tick`
        # Without the registry every place looks outside the city, and with part of it (the divisions
        # applied, the grids still arriving) a report is placed above its grid for good: wait, don't
        # decide on a view known to be behind, don't dead-letter.
        if self.settle is not None and not await self.settle(self.settle_s):
            raise Backpressure(f"the registry view is behind {GRID_REGISTRY}; waiting for it")
        if not self.ready():
            raise Backpressure(f"the registry view is empty; waiting for {GRID_REGISTRY}")
        batch = [
            Inbound(
                self.topics.feeds.get(r.topic, r.topic),
                r.value or b"",
                # The broker's timestamp, not the clock: a replay derives the very same events.
                Provenance(r.topic, r.partition, r.offset, datetime.fromtimestamp(r.timestamp / 1000, UTC)),
                header_dict(r.headers),
            )
            for r in records
        ]
        if self.cap_geometry is not None:
            batch = await self.cap_geometry.prepare(batch)
        with telemetry.tracer("intake").start_as_current_span("intake.process") as span:
            outcome = self.intake.process(batch)
            span.set_attribute("intake.records", len(records))
        result = BatchResult()
        accounts: dict[tuple[str, int], list[tuple[int, str, list[str]]]] = {}
        counts: Counter[tuple[str, str]] = Counter()
        keys = self._order_keys(records)
        context = batch_context()  # the same span for every event of the batch
        for r, inbound, out in zip(records, batch, outcome.outcomes, strict=True):
            if out.error is not None:
                kind = "quarantine" if isinstance(out.error, Quarantined) else "dlq"
                result.dead_letters.append(
                    DeadLetter(r, out.error.reason, out.error.detail, stage_of(out.error), kind)
                )
                counts[(inbound.feed, out.error.reason)] += 1
                continue
            if out.deferred:  # the correlation stage decides, and accounts for, this record
                result.outputs.append(
                    self._forward(r, inbound.feed, keys[(r.topic, r.partition, r.offset)], out)
                )
                continue
            kinds = [ev.event_type for ev in out.events]
            accounts.setdefault((r.topic, r.partition), []).append(
                (r.offset, outcome_of(kinds, out.no_case), [str(ev.case_id) for ev in out.events])
            )
            outcome_label = "ok" if out.events else f"no case: {out.no_case}"  # e.g. "no case: status Test"
            counts[(inbound.feed, outcome_label)] += 1
            result.outputs += [event_record(ev, r.headers, self.topics.cases, context) for ev in out.events]
        hj212 = {(r.topic, r.partition) for r in records if self.topics.feeds.get(r.topic) == "hj212"}
        # One partition per batch (exactly-once loops): the changed stations live on it.
        home = next(iter(hj212)) if len(hj212) == 1 else None
        result.outputs += self._state_records(outcome.env.changed, home)
        latest = {
            tp: datetime.fromtimestamp(
                max(r.timestamp for r in records if (r.topic, r.partition) == tp) / 1000, UTC
            )
            for tp in hj212
        }
        self._count(counts)
        result.outputs += self._ledger_records(accounts)
        marks = self._marks_after(records, keys)
        result.outputs += [rec for tp, mark in sorted(marks.items()) for rec in self._watermark(tp, mark)]
        result.after_commit += [
            outcome.apply,
            lambda: self._advance(latest),
            lambda: self.marks.update(marks),
        ]
        trace.get_current_span().set_attribute("intake.events", len(result.outputs))
        return result

    def _count(self, counts: Counter[tuple[str, str]]) -> None:
        """Records by feed and outcome, one addition per distinct pair in the batch (an addition costs
        a few µs: once per record it showed in the profile)."""
        for (feed, outcome), n in counts.items():
            self._m_outcomes.add(n, {"feed": feed, "outcome": outcome})

    # -- forwarding to the correlation stage ------------------------------------------------------

    def _forwards(self, topic: str) -> bool:
        return self.topics.correlate is not None and self.topics.feeds.get(topic, topic) not in IN_PLACE_FEEDS

    def _order_keys(self, records: Sequence[Record]) -> dict[tuple[str, int, int], OrderKey]:
        """Each forwarding record's order key: its partition's stream time up to it (running max)."""
        out: dict[tuple[str, int, int], OrderKey] = {}
        by_tp: dict[tuple[str, int], list[Record]] = {}
        for r in records:
            if self._forwards(r.topic):
                by_tp.setdefault((r.topic, r.partition), []).append(r)
        for (topic, part), rs in by_tp.items():
            feed = self.topics.feeds.get(topic, topic)
            start = self.marks.get((topic, part), (0, 0))[0]
            keys, _ = order_keys(feed, part, start, [(r.offset, r.timestamp) for r in rs])
            out.update({(topic, part, r.offset): k for r, k in zip(rs, keys, strict=True)})
        return out

    def _marks_after(
        self, records: Sequence[Record], keys: dict[tuple[str, int, int], OrderKey]
    ) -> dict[tuple[str, int], tuple[int, int]]:
        """Each forwarding partition's mark after the batch: its last record's stream time, or the
        clock when the batch read the partition to its end. Every later record of the partition is
        keyed from its mark on (a running maximum), so the mark is its watermark either way; the
        clock's lets the correlation stage decide this batch's records with the other partitions'
        records of the same round, instead of holding them (and writing them to its changelog)
        until each other partition has sent a later record."""
        marks: dict[tuple[str, int], tuple[int, int]] = {}
        for r in records:
            k = keys.get((r.topic, r.partition, r.offset))
            if k is not None:
                marks[(r.topic, r.partition)] = (k[0], r.offset + 1)
        if self.read_to_end is not None:
            now_ms = int(time.time() * 1000)
            for (topic, part), (stream_ms, next_offset) in marks.items():
                if self.read_to_end(TopicPartition(topic, part), next_offset):
                    marks[(topic, part)] = (max(stream_ms, now_ms), next_offset)
        return marks

    def _forward(self, r: Record, feed: str, order: OrderKey, out: Outcome) -> OutRecord:
        assert self.topics.correlate is not None
        amends = any(p.intent != Intent.REPORT for p in out.deferred)
        item = Forwarded(
            topic=r.topic,
            partition=r.partition,
            offset=r.offset,
            feed=feed,
            order=order,
            reports=tuple(out.deferred),
            headers=tuple((k, v) for k, v in (r.headers or ())),
            # Only what can be quarantined there carries its original (an amendment naming nothing known).
            original=r.value if amends else None,
        )
        headers = [
            ("kind", b"forwarded"),
            ("origin", json.dumps([r.topic, r.partition, r.offset]).encode()),
            ("order", json.dumps(list(order)).encode()),
        ]
        headers += [(k, v) for k, v in (r.headers or ()) if k in ("traceparent", "tracestate")]
        return OutRecord(self.topics.correlate, encode(item), key=CITY_REGION.encode(), headers=headers)

    def _watermark(self, tp: tuple[str, int], mark: tuple[int, int]) -> list[OutRecord]:
        """The source partition's watermark to every region, and its mark in the state changelog."""
        assert self.topics.correlate is not None
        feed = self.topics.feeds.get(tp[0], tp[0])
        wm = Watermark((feed, tp[1]), (mark[0], feed, tp[1], mark[1]))
        return [
            OutRecord(
                self.topics.correlate, encode(wm), key=CITY_REGION.encode(), headers=[("kind", b"watermark")]
            ),
            OutRecord(
                self.topics.changelog,
                json.dumps({"stream_ms": mark[0], "next_offset": mark[1]}).encode(),
                key=f"mark:{tp[0]}:{tp[1]}".encode(),
            ),
        ]

    def _ledger_records(
        self, accounts: dict[tuple[str, int], list[tuple[int, str, list[str]]]]
    ) -> list[OutRecord]:
        """One ledger entry per input partition (dead letters are accounted by their DLQ copies)."""
        if self.topics.ledger is None:
            return []
        return [
            OutRecord(
                self.topics.ledger,
                json.dumps(entry(topic, part, self.topics.feeds.get(topic, topic), accs)).encode(),
                key=f"{topic}:{part}".encode(),
            )
            for (topic, part), accs in sorted(accounts.items())
        ]

    def _state_records(
        self, changed: dict[str, dict[str, Any]], home: tuple[str, int] | None
    ) -> list[OutRecord]:
        out = []
        for mn, piece in sorted(changed.items()):
            if home is not None:
                piece["partition"] = home[1]
            out.append(OutRecord(self.topics.state, json.dumps(piece).encode(), key=f"env:{mn}".encode()))
        return out

    def _advance(self, latest: dict[tuple[str, int], datetime]) -> None:
        for tp, at in latest.items():
            if tp not in self.stream_time or at > self.stream_time[tp]:
                self.stream_time[tp] = at

    def _stations_of(self, partition: int) -> tuple[set[str], datetime | None]:
        """The stations whose packets come from `partition`, and the latest receipt among them."""
        stations, seen = set(), None
        for mn, piece in self.intake.env.slices.items():
            if piece.get("partition") == partition:
                stations.add(mn)
                st = piece.get("station")
                if st is not None:
                    at = datetime.fromisoformat(st["last_seen"])
                    seen = at if seen is None or at > seen else seen
        return stations, seen

    async def tick(self, tp: TopicPartition) -> BatchResult:
        """Time-driven work for one owned partition: a forwarding partition read to its end sends
        its watermark (`_idle_watermark`); an HJ 212 partition's stations silent too long, judged on
        the partition's stream time (never the wall clock: an intake behind its input would see every
        station silent), open a case in this partition's transaction."""
        result = BatchResult()
        if self._forwards(tp.topic):
            return await self._idle_watermark(tp)
        if self.topics.feeds.get(tp.topic) != "hj212" or not self.ready():
            return result
        due = self._next_silence.get((tp.topic, tp.partition), 0.0)
        if time.monotonic() < due:
            return result
        self._next_silence[(tp.topic, tp.partition)] = time.monotonic() + self.silence_check_s
        stations, last_seen = self._stations_of(tp.partition)
        now = self.stream_time.get((tp.topic, tp.partition)) or last_seen  # after a handover: its state
        if now is None or not stations:
            return result
        events, outcome = self.intake.silence(now, stations)
        result.outputs += [event_record(ev, None, self.topics.cases) for ev in events]
        result.outputs += self._state_records(outcome.env.changed, (tp.topic, tp.partition))
        result.after_commit.append(outcome.apply)
        return result

    async def _idle_watermark(self, tp: TopicPartition) -> BatchResult:
        """A source partition with nothing left to read: its stream time moves on to the clock (a
        record that comes later is ordered from there), so the correlation stage is not held up by a
        quiet feed. A partition with records still to read moves only with its records."""
        result = BatchResult()
        key = (tp.topic, tp.partition)
        heartbeat = time.monotonic() - self._last_idle_mark.get(key, -1e9) >= self.watermark_interval_s
        if not heartbeat and not self._awaited(key):
            return result
        if self.caught_up is None or not await self.caught_up(tp):
            return result
        stream_ms, next_offset = self.marks.get(key, (0, 0))
        mark = (max(stream_ms, int(time.time() * 1000)), next_offset)
        result.outputs += self._watermark(key, mark)
        result.after_commit += [lambda: self._set_mark(key, mark), lambda: self._idle_mark_sent(key)]
        return result

    def _idle_mark_sent(self, key: tuple[str, int]) -> None:
        self._last_idle_mark[key] = time.monotonic()

    def _awaited(self, key: tuple[str, int]) -> bool:
        """Whether a correlation queue (one this instance decides, or any as its changelog has it)
        holds a record above this partition's mark: that record waits for this watermark."""
        stream_ms, next_offset = self.marks.get(key, (0, 0))
        feed = self.topics.feeds.get(key[0], key[0])
        mine: OrderKey = (stream_ms, feed, key[1], next_offset)
        for queue in (*self.queues.values(), *self.committed_queues.values()):
            newest = queue.newest_held()
            if newest is not None and newest > mine:
                return True
        return False

    def _set_mark(self, key: tuple[str, int], mark: tuple[int, int]) -> None:
        """Only forward: a mark read late from the changelog never takes a partition back."""
        old = self.marks.get(key)
        if old is None or (mark[1], mark[0]) > (old[1], old[0]):
            self.marks[key] = mark

    # -- the correlation stage --------------------------------------------------------------------

    def take_over(self, partition: int) -> None:
        """A correlation partition becomes this instance's: its queue as last committed (the
        changelog is caught up by then)."""
        self.queues[partition] = self.committed_queues.get(partition, CorrelationQueue()).copy()

    async def correlate(self, records: Sequence[Record]) -> BatchResult:
        """Handler of the correlation topic: take in forwarded records and watermarks, decide every
        record whose turn has come, in order, against the region's case book."""
        result = BatchResult()
        by_partition: dict[int, list[Record]] = {}
        for r in records:
            by_partition.setdefault(r.partition, []).append(r)
        for partition, rs in sorted(by_partition.items()):
            result.extend(self._correlate_partition(rs[0].topic, partition, rs))
        return result

    def _correlate_partition(self, topic: str, partition: int, records: list[Record]) -> BatchResult:
        queue = self.queues.get(partition)
        if queue is None:
            self.take_over(partition)
            queue = self.queues[partition]
        items, marks = [], []
        for r in records:
            kind = header_dict(r.headers).get("kind")
            if kind == "watermark" and r.value:
                marks.append(decode_watermark(r.value))
            elif kind == "forwarded" and r.value:
                items.append(decode_forwarded(r.value))
        release = queue.plan(items, marks, self.sources)
        book = self.book.begin()
        result = BatchResult()
        accounts: dict[tuple[str, int], list[tuple[int, str, list[str]]]] = {}
        counts: Counter[tuple[str, str]] = Counter()
        context = batch_context()
        for item in release.decide:
            settled = settle(book, item)
            if settled.error is not None:
                origin = _Origin(
                    item.topic, item.partition, item.offset, None, item.original, item.headers, 0
                )
                result.dead_letters.append(
                    DeadLetter(origin, settled.error.reason, settled.error.detail, "correlate", "quarantine")
                )
                counts[(item.feed, settled.error.reason)] += 1
                continue
            kinds = [ev.event_type for ev in settled.events]
            outcome = outcome_of(kinds, None if settled.events else DUPLICATE)
            accounts.setdefault((item.topic, item.partition), []).append(
                (item.offset, outcome, [str(ev.case_id) for ev in settled.events])
            )
            counts[(item.feed, "ok" if kinds else f"no case: {DUPLICATE}")] += 1
            result.outputs += [
                event_record(ev, item.headers, self.topics.cases, context) for ev in settled.events
            ]
        self._count(counts)
        result.outputs += self._ledger_records(accounts)
        result.outputs += self._queue_records(topic, partition, queue, release)
        result.after_commit += [book.apply, lambda: queue.apply(release)]
        return result

    def _queue_records(
        self, topic: str, partition: int, queue: CorrelationQueue, release: Release
    ) -> list[OutRecord]:
        """The queue's changes in the state changelog, and the horizon in the ledger."""
        out = [
            OutRecord(self.topics.changelog, encode(it), key=_held_key(partition, it.order))
            for it in release.hold
        ]
        out += [OutRecord(self.topics.changelog, None, key=_held_key(partition, k)) for k in release.released]
        out.append(
            OutRecord(
                self.topics.changelog,
                json.dumps(marks_value(release)).encode(),
                key=f"corr:{partition}:marks".encode(),
            )
        )
        if (
            self.topics.ledger is not None
            and release.horizon != queue.horizon
            and release.horizon is not None
        ):
            value = progress_entry(topic, partition, release.horizon)
            out.append(
                OutRecord(self.topics.ledger, json.dumps(value).encode(), key=f"{topic}:{partition}".encode())
            )
        return out

    # -- rebuilding state at start --------------------------------------------------------------

    async def observe_cases(self, records: Sequence[Record]) -> BatchResult:
        """GlobalTable handler for `cases.v1`: what was already taken in, and recent cases."""
        for r in records:
            if r.value:
                ev = decode_seen(r.value)
                correlated = self.topics.correlate is not None and ev.source.network not in NEVER_MERGED
                observe_event(self.book if correlated else self.intake.book, ev)
        # As after a committed batch: what fell past the windows and the taken-in horizon goes.
        self.book.prune()
        self.intake.book.prune()
        return BatchResult()

    async def observe_state(self, records: Sequence[Record]) -> BatchResult:
        """GlobalTable handler for `intake.state.v1` (the last committed slice of every station) and
        `intake.correlate.state.v1` (the correlation stage's marks, queues and horizons)."""
        for r in records:
            key = (r.key or b"").decode()
            if key.startswith("env:"):
                self.intake.env.observe(key[4:], None if r.value is None else json.loads(r.value))
            elif key.startswith("mark:") and r.value is not None:
                topic, _, part = key[5:].rpartition(":")
                v = json.loads(r.value)
                self._set_mark((topic, int(part)), (int(v["stream_ms"]), int(v["next_offset"])))
            elif key.startswith("corr:"):
                self._observe_queue(key, r.value)
        return BatchResult()

    def _observe_queue(self, key: str, value: bytes | None) -> None:
        _, part, what, *rest = key.split(":", 3)
        queue = self.committed_queues.setdefault(int(part), CorrelationQueue())
        if what == "marks" and value is not None:
            queue.observe_marks(json.loads(value))
        elif what == "held" and rest:
            queue.observe_held(
                order_of(json.loads(rest[0])), None if value is None else decode_forwarded(value)
            )

    def prune(self) -> None:
        self.intake.book.prune(datetime.now(UTC))
        self.book.prune()  # on the latest incident decided: the clock of the stage's own order


def _held_key(partition: int, order: OrderKey) -> bytes:
    return f"corr:{partition}:held:{json.dumps(list(order))}".encode()
