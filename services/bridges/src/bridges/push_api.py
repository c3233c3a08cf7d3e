"""HTTP pushes: the public-safety system (GBK XML), the party-building app (JSON) and CAP senders
post their native bodies; each is written unchanged to its topic and answered 202 only after Kafka
acknowledged it. Idempotent by the source's record id: a retried POST of the same record (same id,
same bytes) is answered 202 again from its receipt and is not a second record.

    POST /v1/push/safety   body: one 事件信息 XML document (GBK)     record id: SJBH   key: SJBH
    POST /v1/push/party    body: one 民情日记 JSON object            record id: rjbh   key: rjbh
    POST /v1/push/cap      body: one CAP 1.2 alert                   record id: identifier, key: sender

Answers: 202 `{"status": "accepted"|"duplicate", "record_id", "topic", "partition", "offset"}`;
422 `{"error": "<feed>.<reason>", "kept": {...}}` for a body the bridge cannot read a record id from
(malformed XML or JSON, no id): the sender sees why at once, and the original is written all the same,
keyed `sha256:<digest>`, so intake dead-letters it with its precise reason (a retry is a duplicate); 503 `{"error": "kafka.unavailable"}` with Retry-After when the
write was not acknowledged (send it again: it is then written at most once more, same ce_id).
Callers: role `legacy_system` (the subject names the sender in ce_source) or admin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from bridges.domain.records import (
    NotTakenIn,
    cap_identity,
    digest,
    legacy_headers,
    party_record_id,
    safety_record_id,
)
from bridges.receipts import Receipt, Receipts
from bridges.settings import Settings
from bridges.sink import NotAcknowledged, Sink
from bridges.stats import Stats
from onegrid.auth import Principal, require
from onegrid.provided import Provided

Submitter = Annotated[Principal, Depends(require("submit", "legacy"))]
Reader = Annotated[Principal, Depends(require("read", "metrics"))]


@dataclass(frozen=True)
class PushFeed:
    feed: str
    topic: str
    identify: Callable[[bytes], tuple[str, str]]  # raw -> (kafka key, record id)


def feeds(s: Settings) -> dict[str, PushFeed]:
    def by_id(extract: Callable[[bytes], str]) -> Callable[[bytes], tuple[str, str]]:
        def identify(raw: bytes) -> tuple[str, str]:
            rid = extract(raw)
            return rid, rid

        return identify

    return {
        "safety": PushFeed("safety", s.safety_topic, by_id(safety_record_id)),
        "party": PushFeed("party", s.party_topic, by_id(party_record_id)),
        "cap": PushFeed("cap", s.cap_topic, cap_identity),
    }


@dataclass(frozen=True)
class BridgesDeps:
    """What the endpoints work with, bound by `router`."""

    settings: Settings
    sink: Sink
    receipts: Receipts
    stats: Stats
    status: Callable[[], dict[str, Any]]
    by_feed: dict[str, PushFeed]


deps: Provided[BridgesDeps] = Provided("bridges")
Deps = Annotated[BridgesDeps, Depends(deps)]
routes = APIRouter()


async def take(d: BridgesDeps, feed: PushFeed, request: Request, principal: Principal) -> JSONResponse:
    raw = await request.body()
    bridge = f"{feed.feed}-push"
    sha = digest(raw)
    refused: NotTakenIn | None = None
    try:
        key, record_id = feed.identify(raw)
    except NotTakenIn as e:
        # Kept all the same, keyed by its digest: intake dead-letters it with the precise reason
        # and the original; the sender is told at once (422) and a retry is a duplicate.
        refused, key = e, f"sha256:{sha}"
        record_id = key
        d.stats.event(bridge, "refused")
    done = await d.receipts.find(feed.feed, record_id, sha)
    if done is not None:
        d.stats.event(bridge, "duplicate")
        return _refused(refused, done) if refused else _accepted("duplicate", record_id, done)
    headers = legacy_headers(
        feed=feed.feed, topic=feed.topic, bridge=bridge, sender=principal.subject, raw=raw
    )
    try:
        meta = await d.sink.write(feed.topic, raw, key, headers, timeout_s=d.settings.push_ack_timeout_s)
    except NotAcknowledged as e:
        d.stats.event(bridge, "produce_failed")
        return JSONResponse(
            {"error": "kafka.unavailable", "detail": str(e)[:200]},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    d.stats.produced(bridge)
    where = Receipt(feed.topic, meta.partition, meta.offset)
    await d.receipts.record(feed.feed, record_id, sha, principal.subject, where)
    return _refused(refused, where) if refused else _accepted("accepted", record_id, where)


@routes.post("/push/safety", status_code=202)
async def push_safety(d: Deps, request: Request, principal: Submitter) -> JSONResponse:
    """One public-safety 事件信息 document (GBK XML), bytes as the system sends them."""
    return await take(d, d.by_feed["safety"], request, principal)


@routes.post("/push/party", status_code=202)
async def push_party(d: Deps, request: Request, principal: Submitter) -> JSONResponse:
    """One party-building 民情日记 record (JSON), bytes as the app sends them."""
    return await take(d, d.by_feed["party"], request, principal)


@routes.post("/push/cap", status_code=202)
async def push_cap(d: Deps, request: Request, principal: Submitter) -> JSONResponse:
    """One CAP 1.2 alert (XML), bytes as the sender's system sends them."""
    return await take(d, d.by_feed["cap"], request, principal)


@routes.get("/status")
async def bridge_status(d: Deps, principal: Reader) -> dict[str, Any]:
    """Per HJ 212 station: packets, bad CRC, last seen; per bridge: connections, records,
    refusals, failures; per CAP feed: state, errors, polls."""
    return d.status()


def router(
    s: Settings, sink: Sink, receipts: Receipts, stats: Stats, status: Callable[[], dict[str, Any]]
) -> APIRouter:
    bound = BridgesDeps(s, sink, receipts, stats, status, feeds(s))
    r = APIRouter(prefix="/v1", tags=["bridges"], dependencies=[deps.bind(bound)])
    r.include_router(routes)
    return r


def _refused(e: NotTakenIn, kept: Receipt) -> JSONResponse:
    return JSONResponse(
        {
            "error": e.reason,
            "detail": e.detail,
            "kept": {"topic": kept.topic, "partition": kept.partition, "offset": kept.offset},
        },
        status_code=422,
    )


def _accepted(status: str, record_id: str, where: Receipt) -> JSONResponse:
    return JSONResponse(
        {
            "status": status,
            "record_id": record_id,
            "topic": where.topic,
            "partition": where.partition,
            "offset": where.offset,
        },
        status_code=202,
    )
