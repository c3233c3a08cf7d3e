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
In-memory state (case book, episode slices) changes only after the transaction commits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from opentelemetry import trace

from intake.cap_geometry import CapGeometry
from intake.domain.errors import IntakeError, Quarantined
from intake.domain.ledger import entry, outcome_of
from intake.domain.normalize import Provenance
from intake.domain.process import LEGACY_FEEDS, Inbound, Intake, observe_event
from onegrid import telemetry
from onegrid.envelope import CloudEvent, header_dict
from onegrid.kafka import BatchResult, DeadLetter, OutRecord, Record
from onegrid.kafka.policy import Backpressure
from onegrid.topics import CASES, GRID_REGISTRY, INTAKE_LEDGER, INTAKE_STATE
from onegrid_contracts.case_event import CE_TYPES, CaseEvent, encode_case_event

SOURCE = "/onegrid/intake"
_STAGE = {"place": "enrich", "crosswalk": "map", "correlation": "correlate", "registry": "map"}


def stage_of(error: IntakeError) -> str:
    return _STAGE.get(error.reason.split(".")[0], "parse")


def event_record(
    ev: CaseEvent, parent_headers: Sequence[tuple[str, bytes]] | None, topic: str = CASES
) -> OutRecord:
    headers = CloudEvent(
        type=CE_TYPES[ev.event_type],
        source=SOURCE,
        id=str(ev.event_id),
        subject=str(ev.case_id),
        time=ev.times.received_at,
        extensions={"network": ev.source.network},
    ).headers()
    parent = [(k, v) for k, v in (parent_headers or ()) if k in ("traceparent", "tracestate")]
    headers += parent if parent else telemetry.inject([])
    return OutRecord(topic, encode_case_event(ev), key=str(ev.case_id).encode(), headers=headers)


@dataclass(frozen=True)
class IntakeTopics:
    """The topics the pipeline reads and writes (the catalogue's by default; tests use their own)."""

    feeds: dict[str, str] = field(default_factory=lambda: dict(LEGACY_FEEDS))  # topic -> feed
    cases: str = CASES
    state: str = INTAKE_STATE
    # None: no ledger entries (tests on topics of their own); the service writes INTAKE_LEDGER.
    ledger: str | None = None

    @classmethod
    def catalogue(cls) -> IntakeTopics:
        return cls(ledger=INTAKE_LEDGER)


class IntakePipeline:
    def __init__(
        self, intake: Intake, *, topics: IntakeTopics | None = None, ready: Callable[[], bool] = lambda: True
    ) -> None:
        self.intake = intake
        self.ready = ready
        self.topics = topics or IntakeTopics()
        # Stream time per HJ 212 partition: the latest broker timestamp committed from it. Silence is
        # judged on it, per partition, by the partition's owner, for the stations of that partition
        # (each slice records the partition its station's packets come from).
        self.stream_time: dict[tuple[str, int], datetime] = {}
        # CAP shapes computed off the event loop with a time limit (set by the composition root).
        self.cap_geometry: CapGeometry | None = None
        self._m_outcomes = telemetry.meter("intake").create_counter(
            "intake_records", description="legacy records by feed and outcome reason"
        )

    async def handle(self, records: Sequence[Record]) -> BatchResult:
        if not records:
            return BatchResult()  # time-driven work runs per partition: `tick`
        if not self.ready():
            # Without the registry every place looks outside the city: wait, don't dead-letter.
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
        for r, inbound, out in zip(records, batch, outcome.outcomes, strict=True):
            if out.error is None:
                kinds = [ev.event_type for ev in out.events]
                accounts.setdefault((r.topic, r.partition), []).append(
                    (
                        r.offset,
                        outcome_of(kinds, out.no_case),
                        [str(ev.case_id) for ev in out.events],
                    )
                )
            if out.error is not None:
                kind = "quarantine" if isinstance(out.error, Quarantined) else "dlq"
                result.dead_letters.append(
                    DeadLetter(r, out.error.reason, out.error.detail, stage_of(out.error), kind)
                )
                self._m_outcomes.add(1, {"feed": inbound.feed, "outcome": out.error.reason})
                continue
            outcome_label = "ok" if out.events else f"no case: {out.no_case}"  # e.g. "no case: status Test"
            self._m_outcomes.add(1, {"feed": inbound.feed, "outcome": outcome_label})
            result.outputs += [event_record(ev, r.headers, self.topics.cases) for ev in out.events]
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
        result.outputs += self._ledger_records(accounts)
        result.after_commit += [outcome.apply, lambda: self._advance(latest)]
        trace.get_current_span().set_attribute("intake.events", len(result.outputs))
        return result

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
        """Time-driven work for one owned partition: its stations silent too long, judged on the
        partition's stream time (never the wall clock: an intake behind its input would see every
        station silent), open a case in this partition's transaction."""
        result = BatchResult()
        if self.topics.feeds.get(tp.topic) != "hj212" or not self.ready():
            return result
        stations, last_seen = self._stations_of(tp.partition)
        now = self.stream_time.get((tp.topic, tp.partition)) or last_seen  # after a handover: its state
        if now is None or not stations:
            return result
        events, outcome = self.intake.silence(now, stations)
        result.outputs += [event_record(ev, None, self.topics.cases) for ev in events]
        result.outputs += self._state_records(outcome.env.changed, (tp.topic, tp.partition))
        result.after_commit.append(outcome.apply)
        return result

    # -- rebuilding state at start --------------------------------------------------------------

    async def observe_cases(self, records: Sequence[Record]) -> BatchResult:
        """GlobalTable handler for `cases.v1`: what was already taken in, and recent cases."""
        from onegrid_contracts.case_event import decode_case_event

        for r in records:
            if r.value:
                observe_event(self.intake.book, decode_case_event(r.value))
        return BatchResult()

    async def observe_state(self, records: Sequence[Record]) -> BatchResult:
        """GlobalTable handler for `intake.state.v1`: the last committed slice of every station."""
        for r in records:
            key = (r.key or b"").decode()
            if key.startswith("env:"):
                self.intake.env.observe(key[4:], None if r.value is None else json.loads(r.value))
        return BatchResult()

    def prune(self) -> None:
        self.intake.book.prune(datetime.now(UTC))
