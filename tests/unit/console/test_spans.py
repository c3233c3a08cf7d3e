"""OTLP traces in both encodings, the span store's eviction and links, and the waterfall."""

from __future__ import annotations

import gzip
import json

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from console.domain.spans import BadSpans, Span, SpanStore, waterfall
from console.otlp import decode_traces

T1, T2 = "0af7651916cd43dd8448eb211c80319c", "4bf92f3577b34da6a3ce929d0e0e4736"


class Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans):  # type: ignore[no-untyped-def]
        self.spans += spans
        return SpanExportResult.SUCCESS


def sdk_spans() -> list[ReadableSpan]:
    """A producer span, a consumer child, and a batch span in its own trace linking to the producer."""
    keep = Keep()
    provider = TracerProvider(resource=Resource.create({"service.name": "intake"}))
    provider.add_span_processor(SimpleSpanProcessor(keep))
    tracer = provider.get_tracer("t")
    with (
        tracer.start_as_current_span("gateway publish", kind=trace.SpanKind.PRODUCER) as root,
        tracer.start_as_current_span("intake.process", attributes={"n": 3}),
    ):
        pass
    link = trace.Link(root.get_span_context())
    with (
        tracer.start_as_current_span(
            "process legacy", context=trace.set_span_in_context(trace.INVALID_SPAN), links=[link]
        ),
        tracer.start_as_current_span("child of batch"),
    ):
        pass
    return keep.spans


def test_protobuf_export_of_the_sdk_is_read() -> None:
    body = encode_spans(sdk_spans()).SerializeToString()
    spans = decode_traces(body, "application/x-protobuf")
    by_name = {s.name: s for s in spans}
    root, child = by_name["gateway publish"], by_name["intake.process"]
    assert len(root.trace_id) == 32 and child.trace_id == root.trace_id
    assert child.parent_span_id == root.span_id and root.parent_span_id is None
    assert root.kind == "producer" and child.attributes == {"n": 3} and root.service == "intake"
    assert by_name["process legacy"].links == ((root.trace_id, root.span_id),)
    assert child.end_ns >= child.start_ns > 0


def test_json_export_is_read() -> None:
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "dispatch"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": T1.upper(),
                                "spanId": "00f067aa0ba902b7",
                                "parentSpanId": "",
                                "name": "deliver",
                                "kind": 3,
                                "startTimeUnixNano": "1000000",
                                "endTimeUnixNano": "3000000",
                                "status": {"code": 2},
                                "attributes": [
                                    {"key": "n", "value": {"intValue": "4"}},
                                    {"key": "ok", "value": {"boolValue": True}},
                                    {"key": "l", "value": {"arrayValue": {"values": [{"stringValue": "x"}]}}},
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    [span] = decode_traces(json.dumps(doc).encode(), "application/json")
    assert span == Span(
        T1,
        "00f067aa0ba902b7",
        None,
        "deliver",
        "dispatch",
        "client",
        1_000_000,
        3_000_000,
        "error",
        {"n": 4, "ok": True, "l": ["x"]},
    )


@pytest.mark.parametrize(
    ("body", "ctype", "message"),
    [
        (b"\xff\xff", "application/x-protobuf", "ExportTraceServiceRequest"),
        (b"{", "application/json", "not JSON"),
        (b"[]", "application/json", "resourceSpans"),
        (b"{}", "text/plain", "content type"),
        (
            json.dumps(
                {
                    "resourceSpans": [
                        {"scopeSpans": [{"spans": [{"traceId": "xyz", "spanId": "00f067aa0ba902b7"}]}]}
                    ]
                }
            ).encode(),
            "application/json",
            "span 0: traceId",
        ),
    ],
)
def test_unreadable_exports_name_the_problem(body: bytes, ctype: str, message: str) -> None:
    with pytest.raises(BadSpans, match=message):
        decode_traces(body, ctype)


def span(trace_id: str, span_id: str, parent: str | None, start: int, end: int, **kw) -> Span:  # type: ignore[no-untyped-def]
    return Span(
        trace_id,
        span_id,
        parent,
        kw.pop("name", span_id),
        kw.pop("service", "s"),
        "internal",
        start,
        end,
        **kw,
    )


def test_store_evicts_whole_oldest_traces_and_follows_links() -> None:
    store = SpanStore(max_spans=3)
    store.add([span(T1, "a" * 16, None, 0, 10), span(T1, "b" * 16, "a" * 16, 1, 5)])
    store.add([span(T2, "c" * 16, None, 2, 4, links=((T1, "a" * 16),))])
    assert [s.span_id for s in store.linked(T1)] == ["c" * 16]
    store.add([span(T1, "a" * 16, None, 0, 10)])  # the same span again: not counted twice
    assert store.count == 3
    store.add([span("1" * 32, "d" * 16, None, 0, 1)])
    assert store.trace(T1) == [] and store.linked(T1) == [] and store.count == 2
    assert store.traces() == 2 and store.received == 5


def test_waterfall_nests_children_orders_by_start_and_marks_orphans_and_links() -> None:
    rows = waterfall(
        T1,
        [
            span(T1, "b" * 16, "a" * 16, 2_000_000, 4_000_000),
            span(T1, "a" * 16, None, 1_000_000, 9_000_000),
            span(T1, "e" * 16, "f" * 16, 5_000_000, 6_000_000),  # parent never arrived
        ],
        [span(T2, "c" * 16, None, 3_000_000, 3_500_000)],
    )
    assert [(r["span_id"][0], r["depth"], r["orphan"], r["linked"]) for r in rows] == [
        ("a", 0, False, False),
        ("b", 1, False, False),
        ("c", 0, False, True),
        ("e", 0, True, False),
    ]
    assert rows[1]["offset_ms"] == 1.0 and rows[0]["duration_ms"] == 8.0
    assert waterfall(T1, []) == []


def test_gzip_bodies_are_accepted_by_the_receiver() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from console.otlp import otlp_router

    store = SpanStore()
    app = FastAPI()
    app.include_router(otlp_router(store))
    # The receiver answers loopback clients only.
    assert TestClient(app, client=("10.1.2.3", 50000)).post("/v1/traces", content=b"{}").status_code == 403
    client = TestClient(app, client=("127.0.0.1", 50000))
    body = gzip.compress(encode_spans(sdk_spans()).SerializeToString())
    resp = client.post(
        "/v1/traces",
        content=body,
        headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"},
    )
    assert resp.status_code == 200 and store.count == 4
    assert (
        client.post(
            "/v1/metrics", content=b"\x00", headers={"content-type": "application/x-protobuf"}
        ).status_code
        == 200
    )
    bad = client.post(
        "/v1/traces",
        content=b"nope",
        headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"},
    )
    assert bad.status_code == 400 and "gzip" in bad.json()["detail"]
    assert client.post("/v1/traces", content=b"{}", headers={"content-type": "text/csv"}).status_code == 400


def test_a_gzip_bomb_is_refused_without_inflating_it() -> None:
    """Before: gzip.decompress had no output limit (1 GiB of zeros is a 1 MiB body)."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from console import otlp

    app = FastAPI()
    app.include_router(otlp.otlp_router(SpanStore()))
    client = TestClient(app, client=("127.0.0.1", 50000))
    bomb = gzip.compress(b"\0" * (otlp.MAX_DECODED_BYTES + 1024))
    hdrs = {"content-type": "application/json", "content-encoding": "gzip"}
    assert client.post("/v1/traces", content=bomb, headers=hdrs).status_code == 413
    fine = gzip.compress(json.dumps({"resourceSpans": []}).encode())
    assert client.post("/v1/traces", content=fine, headers=hdrs).status_code == 200
    assert client.post("/v1/traces", content=fine[:-4], headers=hdrs).status_code == 400
