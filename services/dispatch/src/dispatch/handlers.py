"""The consumer-loop handler for `cases.v1` and `dispatch.feedback.v1`.

Contract: a batch is one unit of work of the desk (one database transaction), its records applied
in partition order (key = case_id, so one case's events arrive in order), each idempotent by its
message id, so the loop's at-least-once redelivery changes nothing. Malformed input is dead-lettered with a reason naming the
field (`dispatch.case_invalid`, `dispatch.feedback_invalid`); a well-formed feedback that the state
machine refuses is not poison: it is remembered as `refused:<reason>` (GET /v1/messages/{id}).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import msgspec
from opentelemetry.trace import SpanKind

from dispatch.desk import Change, Desk
from dispatch.domain.facts import decode_case, decode_feedback
from dispatch.store import Headers
from onegrid import telemetry
from onegrid.envelope import get_header
from onegrid.kafka import BatchResult, DeadLetter, Record
from onegrid.kafka.policy import Backpressure

log = logging.getLogger(__name__)


class Inbox:
    def __init__(
        self,
        desk: Desk,
        *,
        cases_topic: str,
        feedback_topic: str,
        settle: Callable[[float], Awaitable[bool]] | None = None,
    ) -> None:
        """`settle(timeout_s)`: waits up to that long for the registry view to hold everything
        committed to the registry (its table's `until_current`); a case is routed by the rules,
        departments and deadlines in force, never by a view known to be behind them."""
        self._settle = settle
        self.settle_s = 5.0  # then the batch is retried with backoff: nothing is lost
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
        if records and self._settle is not None and not await self._settle(self.settle_s):
            raise Backpressure("the registry view is behind the registry; waiting for it")
        result = BatchResult()
        # One span per batch, linked to each record's trace; a record's orders and lifecycle events
        # (through the outbox) continue the trace that began at the legacy packet, or this batch's
        # when the record carries none.
        with self._tracer.start_as_current_span(
            "dispatch.batch",
            kind=SpanKind.CONSUMER,
            links=telemetry.batch_links([r.headers for r in records]),
            attributes={"messaging.batch.message_count": len(records)},
        ):
            own = tuple(telemetry.inject([]))
            taken: list[tuple[Record, Change]] = []
            for r in records:
                change = self._change(r, result, own)
                if change is not None:
                    taken.append((r, change))
            outcomes = await self._desk.apply([c for _, c in taken])
        for (r, change), outcome in zip(taken, outcomes, strict=True):
            if outcome.applied and change.facts is not None and not change.note:
                self._observe_latency(r)
            elif not outcome.applied:
                log.info(
                    "%s[%d]@%d: %s %s", r.topic, r.partition, r.offset, outcome.outcome, outcome.detail or ""
                )
        return result

    def _observe_latency(self, r: Record) -> None:
        stamp = get_header(r.headers or [], "ce_time")
        if not stamp:
            return  # no origin time, no latency (never a made-up zero)
        origin = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        self._m_latency.record(max(0.0, (datetime.now(UTC) - origin).total_seconds()))

    def _change(self, r: Record, result: BatchResult, own: Headers) -> Change | None:
        """The desk's change for `r`, or None when it is dead-lettered (malformed)."""
        value = r.value or b""
        parent = next(((k, v) for k, v in r.headers or () if k == "traceparent"), None)
        trace = (parent,) if parent is not None else own
        if r.topic == self._feedback:
            try:
                return Desk.of_feedback(decode_feedback(value), trace)
            except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as e:
                result.dead_letters.append(DeadLetter(r, "dispatch.feedback_invalid", str(e), "decode"))
                return None
        try:
            return Desk.of_case_event(decode_case(value), trace)
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            result.dead_letters.append(DeadLetter(r, "dispatch.case_invalid", str(e), "decode"))
            return None
