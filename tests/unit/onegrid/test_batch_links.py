"""A batch span links to the producer span of each record that carries one, once per span."""

from __future__ import annotations

from opentelemetry import trace

from onegrid import telemetry


def _parent(trace_byte: bytes, span_byte: bytes) -> tuple[str, bytes]:
    return ("traceparent", b"00-" + trace_byte * 32 + b"-" + span_byte * 16 + b"-01")


def test_links_are_the_records_remote_spans_and_records_without_one_link_nothing() -> None:
    batch = [
        [("ce_id", b"1")],
        [("ce_id", b"2"), _parent(b"1", b"2")],
        [],
        None,
        [("tracestate", b"vendor=1")],  # a propagator's header, but no span to link to
        [_parent(b"1", b"2"), ("ce_id", b"3")],  # the same span again: one link
        [("ce_id", b"4"), _parent(b"3", b"4")],
        [("traceparent", b"not a trace context")],
    ]
    links = telemetry.batch_links(batch)
    assert [(link.context.trace_id, link.context.span_id) for link in links] == [
        (int("1" * 32, 16), int("2" * 16, 16)),
        (int("3" * 32, 16), int("4" * 16, 16)),
    ]
    assert all(link.context.is_remote for link in links)
    # what reading every record's context gives, whatever its headers
    expected = []
    for headers in batch:
        sc = trace.get_current_span(telemetry.extract(headers)).get_span_context()
        if sc.is_valid and sc.span_id not in {s for _, s in expected}:
            expected.append((sc.trace_id, sc.span_id))
    assert [(link.context.trace_id, link.context.span_id) for link in links] == expected


def test_at_most_128_links() -> None:
    spans = [format(i + 1, "016x").encode() for i in range(300)]
    batch = [[("traceparent", b"00-" + b"a" * 32 + b"-" + span + b"-01")] for span in spans]
    links = telemetry.batch_links(batch)
    assert [link.context.span_id for link in links] == [int(span, 16) for span in spans[:128]]
