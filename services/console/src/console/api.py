"""The console's JSON API, polled by its pages every two seconds.

- GET  /api/overview                   throughput per topic, lag per group/partition, DLQ and quarantine
                                       counts with the latest reasons, SLA breaches and escalations
- GET  /api/set-aside/{kind}           dlq | quarantine: counts by reason and the latest records
- POST /api/quarantine/replay          {"actor", "topic", "partition", "offset"} or {"actor", "reason"}
- GET  /api/map/grids?level=grid       the registry's polygons of one level, simplified (GeoJSON)
- GET  /api/map/cases                  open cases with a point
- GET  /api/cases/{id}                 the case: board entry, audit trail, its traces as waterfalls
- GET  /api/cases/{id}/photos/{sha256}?size=thumb|full   a photo of the case (a thumbnail the
                                       console makes, or the photo as stored)
- GET  /api/traces/{trace_id}          one trace's spans as a waterfall (with the batch spans linking in)
Errors are 4xx with a `detail` naming the problem.

Access (onegrid.auth): operators (community to city) read, each within its own scope: the overview's
case counts, overdue cases and alerts, the map's cases, a case's board entry and a trace (one that a
case's event carried) are those of cases in the caller's divisions or departments; a case or trace
outside the scope is a 404, as in dispatch; so is a photo, read through a case that shows it. City and district operators replay, at most
`replay_rate` per client address (429 with Retry-After) and with bodies of at most 4 KiB; the replay
is recorded under the caller's own name (the token's subject). The case page's trail is read from
audit with the operator's own token, in the operator's scope.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, model_validator

from console.domain.casefile import trace_ids, trail_rows
from console.domain.flow import group_totals
from console.domain.grid_map import LEVELS, level_features
from console.domain.set_aside import KINDS, NotReplayable, Position
from console.domain.spans import SpanStore, waterfall
from console.feeds import Feeds
from console.replay import NoSuchRecord, Replayer
from console.upstream import Unavailable, Upstream
from console.watch import KafkaWatch
from console.worker.photos import PhotoStore
from onegrid.auth import Principal, Role, ScopeFilter, caller, require
from onegrid.provided import Provided
from onegrid.ratelimit import RateLimiter

_UUID = r"^[0-9a-fA-F-]{8,64}$"
MAP_CACHE = 64


class ReplayRequest(BaseModel):
    """One quarantined record by its position on the quarantine topic, or every one of a reason."""

    actor: str = Field(
        min_length=1, max_length=200, description="who asks: the caller's own subject, e.g. staff:hj-0042"
    )
    topic: str | None = Field(default=None, max_length=249)
    partition: int | None = Field(default=None, ge=0, le=2**31 - 1)
    offset: int | None = Field(default=None, ge=0, le=2**63 - 1)
    reason: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _one_target(self) -> ReplayRequest:
        position = (self.topic, self.partition, self.offset)
        if self.reason is None and None in position:
            raise ValueError("give topic, partition and offset of a quarantined record, or a reason")
        if self.reason is not None and any(p is not None for p in position):
            raise ValueError("give either a position or a reason, not both")
        return self


@dataclass(frozen=True)
class ConsoleDeps:
    """What the endpoints work with, bound by `router`."""

    watch: KafkaWatch
    feeds: Feeds
    spans: SpanStore
    upstream: Upstream
    replayer: Replayer
    tolerance: float
    replay_limited: Callable[[Request], Awaitable[None]]
    ranking_min_cases: int
    photos: PhotoStore | None
    # (level, within) -> (registry version, features): at most MAP_CACHE entries, least recent out
    map_cache: OrderedDict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=OrderedDict)


deps: Provided[ConsoleDeps] = Provided("console")
Deps = Annotated[ConsoleDeps, Depends(deps)]
routes = APIRouter()


async def _replay_limited(request: Request, d: Deps) -> None:
    await d.replay_limited(request)


def scope_of(request: Request) -> ScopeFilter:
    principal = caller(request)
    # the router's guard always sets it; fail closed all the same
    return principal.scope() if principal is not None else ScopeFilter()


@routes.get("/overview")
async def overview(d: Deps, request: Request) -> dict[str, Any]:
    now = datetime.now(UTC)
    lag = [row.to_json() for row in d.watch.lag]
    return {
        "now": now.isoformat(),
        "sampled_at": d.watch.sampled_at,
        "sample_age_s": None if d.watch.sampled_at is None else round(time.time() - d.watch.sampled_at, 1),
        "sample_error": d.watch.error,
        "throughput": [t.to_json() | {"via": d.watch.via.get(t.topic)} for t in d.watch.throughput.rates()],
        "lag": lag,
        "lag_by_group": group_totals(d.watch.lag),
        "set_aside": d.feeds.book.summary(),
        "sla": d.feeds.board.summary(now, scope_of(request)),
        "feeds": d.feeds.caught_up(),
        "spans": {"stored": d.spans.count, "traces": d.spans.traces(), "received": d.spans.received},
    }


@routes.get("/set-aside/{kind}")
async def set_aside(d: Deps, kind: str) -> dict[str, Any]:
    if kind not in KINDS:
        raise HTTPException(404, f"kind must be one of {', '.join(KINDS)}")
    summary: dict[str, Any] = d.feeds.book.summary()[kind]  # type: ignore[assignment]
    return summary


@routes.post("/quarantine/replay", dependencies=[Depends(_replay_limited)])
async def replay(
    d: Deps, req: ReplayRequest, principal: Annotated[Principal, Depends(require("replay", "console"))]
) -> dict[str, Any]:
    """Re-produce quarantined records to their original topics; intake re-quarantines what is
    still unmapped. The answer says who replayed what to where: the caller itself (an admin,
    acting for the command centre's tools, may name the person it acts for)."""
    if principal.role != Role.ADMIN and req.actor != principal.subject:
        raise HTTPException(
            403, f"actor must be the caller ({principal.subject}): one replays in one's own name"
        )
    if req.reason is not None:
        positions = d.feeds.book.positions(req.reason)
        if not positions:
            raise HTTPException(404, f"no quarantined record with reason {req.reason!r}")
    else:
        assert req.topic is not None and req.partition is not None and req.offset is not None
        positions = [Position(req.topic, req.partition, req.offset)]
    try:
        done = await d.replayer.replay(positions, req.actor)
    except NotReplayable as exc:
        raise HTTPException(409, str(exc)) from exc
    except NoSuchRecord as exc:
        raise HTTPException(404, str(exc)) from exc
    except RuntimeError as exc:
        raise HTTPException(503, str(exc)) from exc
    return {"actor": req.actor, "replayed": [item.to_json() for item in done]}


@routes.get("/map/grids")
async def grids(
    d: Deps,
    level: Annotated[str, Query(description=" | ".join(LEVELS))] = "grid",
    within: Annotated[str, Query(pattern=r"^([0-9]{6}([0-9]{3}){0,4})?$")] = "",
) -> dict[str, Any]:
    """The polygons of one level (optionally within a division code), simplified for drawing."""
    if level not in LEVELS:
        raise HTTPException(422, f"level must be one of {', '.join(LEVELS)}")
    key = (level, within)
    cached = d.map_cache.get(key)
    if cached is None or cached[0] != d.feeds.view.spatial_version:
        version = d.feeds.view.spatial_version
        doc = await asyncio.to_thread(
            level_features,
            dict(d.feeds.view.all("division")),
            dict(d.feeds.view.all("grid")),
            level,
            d.tolerance,
            within=within,
        )
        cached = d.map_cache[key] = (version, doc)
    d.map_cache.move_to_end(key)
    while len(d.map_cache) > MAP_CACHE:
        d.map_cache.popitem(last=False)
    return cached[1]


@routes.get("/map/cases")
async def map_cases(d: Deps, request: Request) -> dict[str, Any]:
    return {"cases": d.feeds.board.points(datetime.now(UTC), scope_of(request))}


@routes.get("/cases/{case_id}")
async def case(d: Deps, case_id: Annotated[str, Path(pattern=_UUID)], request: Request) -> dict[str, Any]:
    now = datetime.now(UTC)
    scope = scope_of(request)
    entry = d.feeds.board.get(case_id, scope)
    ended = d.feeds.board.ended_state(case_id, scope)
    trail_error = None
    try:
        story = await d.upstream.story(case_id, request.headers.get("authorization"))
    except Unavailable as exc:
        story, trail_error = None, str(exc)
    entries = (story or {}).get("entries", [])
    if entry is None and not entries and ended is None:
        # out of scope reads as absent; an unreachable trail does not turn absent into present
        why = f" (the audit trail is unavailable: {trail_error})" if trail_error else ""
        raise HTTPException(404, f"case {case_id} is neither on the board nor in the audit trail{why}")
    traces = {tid: waterfall(tid, d.spans.trace(tid), d.spans.linked(tid)) for tid in trace_ids(entries)}
    return {
        "case_id": case_id,
        "case": None if entry is None else entry.to_json(now),
        "ended": ended,
        "trail": trail_rows(entries),
        "trail_error": trail_error,
        "traces": traces,
    }


@routes.get("/cases/{case_id}/photos/{sha256}")
async def case_photo(
    d: Deps,
    case_id: Annotated[str, Path(pattern=_UUID)],
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    request: Request,
    size: Literal["thumb", "full"] = "thumb",
) -> Response:
    """A photo of a case the caller may see (404 otherwise, as for the case): the thumbnail the
    page shows, or the photo as stored. A department's evidence whose file the console's store
    does not hold is a 404 saying so; the page then shows its reference."""
    if d.photos is None or d.feeds.board.photo(case_id, sha256, scope_of(request)) is None:
        raise HTTPException(404, f"no photo {sha256} of a case {case_id} in your scope")
    cache = {"Cache-Control": "private, max-age=86400, immutable"}
    try:
        if size == "thumb":
            thumb = await d.photos.thumbnail(sha256)
            if thumb is not None:
                return Response(thumb, media_type="image/jpeg", headers=cache)
        else:
            found = await d.photos.find(sha256)
            if found is not None:
                return Response(found[1], media_type=found[0], headers=cache)
    except ValueError as e:
        raise HTTPException(422, str(e)) from e
    raise HTTPException(404, f"photo {sha256} is not in the console's photo store")


@routes.get("/rankings")
async def rankings(
    d: Deps,
    request: Request,
    dimension: Literal["department", "grid", "street", "district", "network", "category"] = "department",
    metric: str = "on_time_closure_rate",
    period: Literal["day", "week", "month"] = "month",
) -> dict[str, Any]:
    """考核 ranking from the evaluation service, in the operator's own scope; units with fewer than
    `ranking_min_cases` cases are listed apart as an insufficient sample, never ranked."""
    params = {"dimension": dimension, "metric": metric, "period": period, "min_cases": d.ranking_min_cases}
    try:
        doc = await d.upstream.rankings(params, request.headers.get("authorization"))
    except Unavailable as exc:
        return {"error": str(exc), "ranked": [], "unranked": [], "min_cases": d.ranking_min_cases}
    return doc or {"ranked": [], "unranked": [], "min_cases": d.ranking_min_cases}


@routes.get("/ledger")
async def ledger(d: Deps, request: Request) -> dict[str, Any]:
    """Intake's ledger, with the operator's own credentials; an error is shown, not raised."""
    try:
        doc = await d.upstream.ledger(request.headers.get("authorization"))
    except Unavailable as exc:
        return {"error": str(exc)}
    return doc or {"error": "the ledger is still being read"}


@routes.get("/traces/{trace_id}")
async def trace(d: Deps, trace_id: Annotated[str, Path(max_length=32)], request: Request) -> dict[str, Any]:
    tid = trace_id.lower()
    if len(tid) != 32 or any(c not in "0123456789abcdef" for c in tid):
        raise HTTPException(422, "a trace id is 32 hex digits")
    scope = scope_of(request)
    if not scope.unrestricted and not d.feeds.board.trace_visible(tid, scope):
        raise HTTPException(404, f"no trace {tid} of a case in your scope")
    rows = waterfall(tid, d.spans.trace(tid), d.spans.linked(tid))
    if not rows:
        raise HTTPException(404, f"no span of trace {tid} has been received")
    return {"trace_id": tid, "spans": rows}


def router(
    *,
    watch: KafkaWatch,
    feeds: Feeds,
    spans: SpanStore,
    upstream: Upstream,
    replayer: Replayer,
    tolerance: float,
    replay_limiter: RateLimiter,
    ranking_min_cases: int = 20,
    photos: PhotoStore | None = None,
) -> APIRouter:
    bound = ConsoleDeps(
        watch=watch,
        feeds=feeds,
        spans=spans,
        upstream=upstream,
        replayer=replayer,
        tolerance=tolerance,
        replay_limited=replay_limiter.dependency("replay"),
        ranking_min_cases=ranking_min_cases,
        photos=photos,
    )
    r = APIRouter(
        prefix="/api", tags=["console"], dependencies=[Depends(require("read", "console")), deps.bind(bound)]
    )
    r.include_router(routes)
    return r
