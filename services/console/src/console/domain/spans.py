"""Spans received over OTLP, kept in memory by trace, and a trace laid out as a waterfall.

`spans_from_otlp` reads an ExportTraceServiceRequest in its JSON mapping (OTLP/HTTP JSON: ids in hex,
int64 as strings, kind as a number) and equally the dict protobuf's `MessageToDict` gives (ids in
base64, kind as an enum name), so one reader serves both encodings. It raises `BadSpans` naming the
first span it cannot read.

The store evicts whole traces, oldest first, once it holds more than `max_spans`. A batch span (one
per consumer batch) belongs to its own trace and *links* to each record's producer span; the store
indexes links, so a trace's view also shows the batch spans that took part in it, marked as linked.
"""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]
_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_STATUS = {0: "unset", 1: "ok", 2: "error"}


class BadSpans(ValueError):
    """The payload is not an OTLP trace export; the message says where."""


@dataclass(frozen=True, slots=True)
class Span:
    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits
    parent_span_id: str | None
    name: str
    service: str
    kind: str
    start_ns: int
    end_ns: int
    status: str = "unset"
    attributes: dict[str, Any] = field(default_factory=dict)
    links: tuple[tuple[str, str], ...] = ()  # (trace_id, span_id)


def _id(value: Any, size: int, what: str) -> str | None:
    """A trace (16 bytes) or span (8 bytes) id from hex or base64 text; None when empty."""
    if value in (None, ""):
        return None
    text = str(value)
    if len(text) == 2 * size:
        try:
            bytes.fromhex(text)
            return text.lower()
        except ValueError:
            pass
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise BadSpans(f"{what} {text!r} is neither {2 * size} hex digits nor base64 of {size} bytes")
    return raw.hex()


def any_value(v: Any) -> Any:
    """An OTLP AnyValue as a plain value."""
    if not isinstance(v, dict):
        return v
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in v:
            return v[key]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [any_value(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return attributes(v["kvlistValue"].get("values", []))
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def attributes(items: Iterable[Json]) -> dict[str, Any]:
    return {str(a.get("key")): any_value(a.get("value")) for a in items}


def _kind(value: Any) -> str:
    if isinstance(value, str) and not value.isdigit():
        return value.removeprefix("SPAN_KIND_").lower()
    return _KINDS.get(int(value or 0), "unspecified")


def _status(value: Json | None) -> str:
    code = (value or {}).get("code", 0)
    if isinstance(code, str) and not code.isdigit():
        return code.removeprefix("STATUS_CODE_").lower()
    return _STATUS.get(int(code), "unset")


def spans_from_otlp(doc: Json) -> list[Span]:
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceSpans", []), list):
        raise BadSpans("expected an object with a resourceSpans list")
    out: list[Span] = []
    for i, rs in enumerate(doc.get("resourceSpans", [])):
        resource = attributes((rs.get("resource") or {}).get("attributes", []))
        service = str(resource.get("service.name", "unknown"))
        for ss in rs.get("scopeSpans", []) or rs.get("instrumentationLibrarySpans", []):
            for j, s in enumerate(ss.get("spans", [])):
                where = f"resourceSpans[{i}] span {j}"
                try:
                    trace_id = _id(s.get("traceId"), 16, "traceId")
                    span_id = _id(s.get("spanId"), 8, "spanId")
                    if trace_id is None or span_id is None:
                        raise BadSpans("traceId and spanId are required")
                    links = tuple(
                        (t, sp)
                        for link in s.get("links", [])
                        if (t := _id(link.get("traceId"), 16, "link traceId"))
                        and (sp := _id(link.get("spanId"), 8, "link spanId"))
                    )
                    out.append(
                        Span(
                            trace_id=trace_id,
                            span_id=span_id,
                            parent_span_id=_id(s.get("parentSpanId"), 8, "parentSpanId"),
                            name=str(s.get("name", "")),
                            service=service,
                            kind=_kind(s.get("kind")),
                            start_ns=int(s.get("startTimeUnixNano") or 0),
                            end_ns=int(s.get("endTimeUnixNano") or 0),
                            status=_status(s.get("status")),
                            attributes=attributes(s.get("attributes", [])),
                            links=links,
                        )
                    )
                except (BadSpans, TypeError, ValueError, AttributeError) as exc:
                    raise BadSpans(f"{where}: {exc}") from exc
    return out


class SpanStore:
    def __init__(self, max_spans: int = 100_000) -> None:
        self.max_spans = max_spans
        self._traces: OrderedDict[str, dict[str, Span]] = OrderedDict()
        self._linked_from: dict[str, set[str]] = {}  # trace id -> traces with spans linking into it
        self.count = 0
        self.received = 0

    def add(self, spans: Iterable[Span]) -> None:
        for s in spans:
            bucket = self._traces.setdefault(s.trace_id, {})
            if s.span_id not in bucket:
                self.count += 1
            bucket[s.span_id] = s
            self.received += 1
            for linked_trace, _ in s.links:
                if linked_trace != s.trace_id:
                    self._linked_from.setdefault(linked_trace, set()).add(s.trace_id)
        while self.count > self.max_spans and len(self._traces) > 1:
            old, spans_of = self._traces.popitem(last=False)
            self.count -= len(spans_of)
            self._linked_from.pop(old, None)

    def trace(self, trace_id: str) -> list[Span]:
        return list(self._traces.get(trace_id.lower(), {}).values())

    def linked(self, trace_id: str) -> list[Span]:
        """Spans of other traces that link into `trace_id`, with the rest of their own traces."""
        out: list[Span] = []
        for other in sorted(self._linked_from.get(trace_id.lower(), ())):
            out += self.trace(other)
        return out

    def traces(self) -> int:
        return len(self._traces)


def waterfall(trace_id: str, own: list[Span], linked: list[Span] = ()) -> list[Json]:  # type: ignore[assignment]
    """Rows in start order, depth-first under their parents, with offsets from the earliest span.

    A span whose parent never arrived is shown at the top level (`orphan`); spans of linking traces
    carry `linked: true` and hang under nothing of this trace.
    """
    spans = [(s, False) for s in own] + [(s, True) for s in linked if s.trace_id != trace_id]
    if not spans:
        return []
    start = min(s.start_ns for s, _ in spans)
    ids = {s.span_id for s, _ in spans}
    children: dict[str | None, list[tuple[Span, bool]]] = {}
    for s, is_linked in spans:
        parent = s.parent_span_id if s.parent_span_id in ids else None
        children.setdefault(parent, []).append((s, is_linked))
    rows: list[Json] = []

    def visit(parent: str | None, depth: int) -> None:
        for s, is_linked in sorted(children.get(parent, []), key=lambda x: (x[0].start_ns, x[0].span_id)):
            rows.append(
                {
                    "trace_id": s.trace_id,
                    "span_id": s.span_id,
                    "parent_span_id": s.parent_span_id,
                    "name": s.name,
                    "service": s.service,
                    "kind": s.kind,
                    "status": s.status,
                    "depth": depth,
                    "offset_ms": round((s.start_ns - start) / 1e6, 3),
                    "duration_ms": round(max(0, s.end_ns - s.start_ns) / 1e6, 3),
                    "orphan": depth == 0 and s.parent_span_id is not None,
                    "linked": is_linked,
                    "attributes": s.attributes,
                }
            )
            visit(s.span_id, depth + 1)

    visit(None, 0)
    return rows
