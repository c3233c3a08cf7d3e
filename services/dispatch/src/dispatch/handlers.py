"""The consumer-loop handler for `cases.v1` and `dispatch.feedback.v1`.

Contract: records are applied one by one in partition order (key = case_id, so one case's events
arrive in order); each is one database transaction, idempotent by its message id, so the loop's
at-least-once redelivery changes nothing. Malformed input is dead-lettered with a reason naming the
field (`dispatch.case_invalid`, `dispatch.feedback_invalid`); a well-formed feedback that the state
machine refuses is not poison: it is remembered as `refused:<reason>` (GET /v1/messages/{id}).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
from opentelemetry.trace import SpanKind

from dispatch.desk import Desk
from dispatch.domain.facts import decode_case, decode_feedback
from onegrid import telemetry
from onegrid.envelope import get_header
from onegrid.kafka import BatchResult, DeadLetter, Record

log = logging.getLogger(__name__)


class Inbox:
    def __init__(self, desk: Desk, *, cases_topic: str, feedback_topic: str) -> None:
        self._tracer = telemetry.tracer("dispatch")
        self._m_latency = telemetry.meter("dispatch").create_histogram(
            "dispatch_case_latency",
            unit="s",
            description="from the legacy record's arrival in Kafka (the case event's ce_time) to the case's registration",
        )
        self._desk = desk
        self._cases = cases_topic
        self._feedback = feedback_topic

    async def handle(self, records: Sequence[Record]) -> BatchResult:
        result = BatchResult()
        for r in records:
            # One span per record, child of the record's own trace: dispatch does a database
            # transaction per record anyway, and its orders and lifecycle events (through the outbox)
            # then continue the trace that began at the legacy packet.
            with self._tracer.start_as_current_span(
                "dispatch.record", context=telemetry.extract(r.headers), kind=SpanKind.CONSUMER
            ):
                await self._one(r, result)
        return result

    def _observe_latency(self, r: Record) -> None:
        stamp = get_header(r.headers or [], "ce_time")
        if not stamp:
            return  # no origin time, no latency (never a made-up zero)
        origin = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        self._m_latency.record(max(0.0, (datetime.now(UTC) - origin).total_seconds()))

    async def _one(self, r: Record, result: BatchResult) -> None:
        value = r.value or b""
        if r.topic == self._feedback:
            try:
                fb = decode_feedback(value)
            except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as e:
                result.dead_letters.append(DeadLetter(r, "dispatch.feedback_invalid", str(e), "decode"))
                return
            outcome = await self._desk.feedback(fb)
        else:
            try:
                facts = decode_case(value)
            except (msgspec.ValidationError, msgspec.DecodeError) as e:
                result.dead_letters.append(DeadLetter(r, "dispatch.case_invalid", str(e), "decode"))
                return
            outcome = await self._desk.case_event(facts)
            if outcome.applied and facts.event_type == "case.reported":
                self._observe_latency(r)
        if not outcome.applied:
            log.info(
                "%s[%d]@%d: %s %s", r.topic, r.partition, r.offset, outcome.outcome, outcome.detail or ""
            )
