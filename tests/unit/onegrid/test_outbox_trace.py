"""Records put in an outbox continue the trace of the change that enqueued them."""

from __future__ import annotations

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
