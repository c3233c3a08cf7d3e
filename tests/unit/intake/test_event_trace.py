"""A case event carries the trace of the legacy record it came from, or else the batch's own span
(injected once per batch and shared by its events)."""

from __future__ import annotations

import json

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from intake.pipeline import batch_context, event_record
from onegrid.envelope import header_dict
from onegrid_contracts.case_event import decode_case_event
from tests.unit.dispatch.sample import case_event

BATCH_SPAN = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, False, TraceFlags(1))
PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _event():  # type: ignore[no-untyped-def]
    return decode_case_event(json.dumps(case_event()).encode())


def test_events_without_a_parent_carry_the_batch_span() -> None:
    with trace.use_span(NonRecordingSpan(BATCH_SPAN)):
        context = batch_context()
        shared = [event_record(_event(), None, context=context) for _ in range(3)]
        alone = event_record(_event(), [("other", b"x")])
    want = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    for rec in [*shared, alone]:
        assert header_dict(rec.headers)["traceparent"] == want
        assert [k for k, _ in rec.headers].count("traceparent") == 1
    assert shared[0].headers is not shared[1].headers


def test_the_parents_trace_wins_over_the_batch_span() -> None:
    with trace.use_span(NonRecordingSpan(BATCH_SPAN)):
        rec = event_record(_event(), [("traceparent", PARENT.encode())], context=batch_context())
    assert header_dict(rec.headers)["traceparent"] == PARENT


def test_key_and_subject_are_the_case_id() -> None:
    ev = _event()
    rec = event_record(ev, None, context=[])
    assert rec.key == str(ev.case_id).encode()
    assert header_dict(rec.headers)["ce_subject"] == str(ev.case_id)
