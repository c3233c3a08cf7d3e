"""A local OTLP/HTTP receiver (https://opentelemetry.io/docs/specs/otlp/#otlphttp): traces are kept
in the span store for the case page's waterfall; metrics and logs are accepted and dropped (they
have Prometheus and the logs), so a service pointed at the console exports without errors.

Bodies: `application/x-protobuf` (the SDK exporter's default) or `application/json`, optionally
gzip-encoded; decompressed, a body holds at most `MAX_DECODED_BYTES` (a small gzip bomb cannot
fill the console's memory: 413). An unreadable body is a 400 naming the problem (the exporter logs it
and drops the batch; it does not retry a 400).

Access: the receiver takes no credentials (the SDK exporters of the local stack send none) and so
answers loopback clients only (127.0.0.0/8, ::1); anything else is a 403. A deployment with remote
services exports to a real collector instead (ONEGRID_OTEL_EXPORTER_OTLP_ENDPOINT).
"""

from __future__ import annotations

import ipaddress
import json
import zlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from console.domain.spans import BadSpans, Span, SpanStore, spans_from_otlp
from onegrid.auth import public
from onegrid.provided import Provided

PROTOBUF = "application/x-protobuf"
MAX_DECODED_BYTES = 32 * 1024 * 1024


def decode_traces(body: bytes, content_type: str) -> list[Span]:
    """The spans of one OTLP trace export; raises BadSpans."""
    if content_type.startswith(PROTOBUF):
        req = ExportTraceServiceRequest()
        try:
            req.ParseFromString(body)
        except DecodeError as exc:
            raise BadSpans(f"not an ExportTraceServiceRequest: {exc}") from exc
        doc: Any = MessageToDict(req)
    elif content_type.startswith("application/json"):
        try:
            doc = json.loads(body or b"{}")
        except ValueError as exc:
            raise BadSpans(f"not JSON: {exc}") from exc
    else:
        raise BadSpans(f"content type {content_type or '(none)'} is neither {PROTOBUF} nor application/json")
    return spans_from_otlp(doc)


async def _body(request: Request) -> bytes:
    raw = await request.body()
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding == "gzip":
        try:
            return gunzip(raw, MAX_DECODED_BYTES)
        except (OSError, EOFError, zlib.error) as exc:
            raise HTTPException(400, f"content-encoding gzip but the body is not gzip: {exc}") from exc
    if encoding not in ("", "identity"):
        raise HTTPException(415, f"content-encoding {encoding} is not supported (gzip or none)")
    return raw


def gunzip(raw: bytes, limit: int) -> bytes:
    """`raw` decompressed, refused with 413 as soon as the output passes `limit` bytes."""
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
    out = inflate.decompress(raw, limit + 1)
    if len(out) > limit:
        raise HTTPException(413, f"the decompressed body is larger than {limit} bytes")
    if not inflate.eof:
        raise zlib.error("truncated or trailing data")
    return out


def _reply(content_type: str) -> Response:
    if content_type.startswith(PROTOBUF):
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type=PROTOBUF)
    return Response(b"{}", media_type="application/json")


async def loopback_only(request: Request) -> None:
    host = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise HTTPException(403, f"the OTLP receiver answers loopback clients only, not {host or 'unknown'}")


span_store: Provided[SpanStore] = Provided("otlp_spans")
Spans = Annotated[SpanStore, Depends(span_store)]
routes = APIRouter()


@routes.post("/v1/traces")
async def traces(store: Spans, request: Request) -> Response:
    """Accept an OTLP trace export and keep its spans in memory."""
    content_type = request.headers.get("content-type", "").lower()
    try:
        spans = decode_traces(await _body(request), content_type)
    except BadSpans as exc:
        raise HTTPException(400, str(exc)) from exc
    store.add(spans)
    return _reply(content_type)


@routes.post("/v1/metrics")
async def metrics(request: Request) -> Response:
    """Accepted and dropped: metrics are on every service's /metrics (Prometheus)."""
    await request.body()
    return _reply(request.headers.get("content-type", "").lower())


@routes.post("/v1/logs")
async def logs(request: Request) -> Response:
    """Accepted and dropped: logs go to each service's log file."""
    await request.body()
    return _reply(request.headers.get("content-type", "").lower())


def otlp_router(store: SpanStore) -> APIRouter:
    r = APIRouter(
        tags=["otlp"],
        dependencies=[
            Depends(public("OTLP exports of the local services, loopback only")),
            Depends(loopback_only),
            span_store.bind(store),
        ],
    )
    r.include_router(routes)
    return r
