"""Records put in an outbox continue the trace of the change that enqueued them."""

from __future__ import annotations

import contextlib

from opentelemetry.sdk.trace import TracerProvider

from onegrid.outbox import with_trace


def test_current_trace_is_added_unless_the_record_has_one() -> None:
    tracer = TracerProvider().get_tracer("t")
    assert with_trace([("ce_id", b"1")]) == [("ce_id", b"1")]  # no span: unchanged
    with tracer.start_as_current_span("change") as span:
        headers = dict(with_trace([("ce_id", b"1")]))
        trace_id = format(span.get_span_context().trace_id, "032x")
        assert headers["traceparent"].decode().split("-")[1] == trace_id
        own = [("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]
        assert with_trace(own) == own


def test_the_context_read_once_gives_each_record_what_reading_it_per_record_gives() -> None:
    from onegrid import telemetry
    from onegrid.outbox import _decode_headers, _encode_headers

    tracer = TracerProvider().get_tracer("t")
    records = [
        [("ce_id", b"1")],
        [("ce_id", b"2"), ("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")],
        [("ce_id", b"3"), ("tracestate", b"stale=1")],
        [],
    ]
    for active in (False, True):
        with tracer.start_as_current_span("change") if active else contextlib.nullcontext():
            current = telemetry.inject([])
            for h in records:
                assert with_trace(h, current) == with_trace(h)
                assert _decode_headers(_encode_headers(with_trace(h, current))) == with_trace(h)
