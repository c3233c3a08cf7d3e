"""The grid worker's app API (`/worker/api/`), for the phone app served at `/worker/`.

- GET  /worker/api/me                    who I am, my grids (names from the registry)
- GET  /worker/api/work?lat=&lon=        the open cases of my grids, nearest first, with what is
                                         expected of me (self_handle, verify, supplement, follow)
- GET  /worker/api/grids                 my grids' boundaries (GeoJSON, simplified as the console map's)
- GET  /worker/api/categories            the taxonomy (code, 中文, English), for the searchable picker
- PUT  /worker/api/photos/{sha256}       a photo's bytes, stored content-addressed (idempotent)
- GET  /worker/api/photos/{sha256}       a stored photo of a case the caller may see
- POST /worker/api/patrol                a patrol report -> legacy.patrol.v1 (idempotent by report_id)
- POST /worker/api/cases/{id}/{action}   self_handle | escalate | verify | rework, forwarded to
                                         dispatch with the worker's own token and Idempotency-Key

Access: the worker's token, as for every API (onegrid.auth). Cases and grids are the token's scope
only; a report for a grid outside it is 403; actions are dispatch's to allow (its scope, its state
machine, its refusal of self-verification). The worker is the token's subject, never the body's.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import httpx
import msgspec
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from console.domain.grid_map import level_features
from console.domain.work import (
    MAX_PHOTOS,
    MEDIA_EXT,
    SHA256,
    StoredPhoto,
    in_grids,
    my_work,
    patrol_record,
    photo_ref,
)
from console.feeds import Feeds
from console.worker.photos import PhotoStore
from console.worker.taxonomy import Taxonomy
from onegrid.auth import Principal, require
from onegrid.envelope import CloudEvent
from onegrid.provided import Provided

Reader = Annotated[Principal, Depends(require("read", "cases"))]
Reporter = Annotated[Principal, Depends(require("report", "patrol"))]
ACTIONS = ("self_handle", "escalate", "verify", "rework")
REMEMBERED_REPORTS = 10_000
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_REASON = r"^[a-z0-9_]+(\.[a-z0-9_]+)*$"


class Location(BaseModel):
    lat: float = Field(ge=3, le=54)
    lon: float = Field(ge=73, le=136)
    source: Literal["gps", "map"]
    accuracy_m: float | None = Field(default=None, ge=0)


class PhotoIn(BaseModel):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    media_type: Literal["image/jpeg", "image/png", "image/webp"] = "image/jpeg"


class PatrolIn(BaseModel):
    report_id: str = Field(pattern=_UUID, description="Drawn once by the phone; resending it is harmless.")
    grid_code: str = Field(pattern=r"^[0-9]{15}([0-9]{3})?$")
    category: str = Field(pattern=r"^[a-z_]+(\.[a-z_]+)+$", max_length=120)
    description: str = Field(min_length=1, max_length=2000)
    severity: Literal["I", "II", "III", "IV"] = "IV"
    location: Location
    photos: list[PhotoIn] = Field(min_length=1, max_length=MAX_PHOTOS)
    reported_at: datetime
    worker_display: str = Field(default="", max_length=100)


class ActionIn(BaseModel):
    reason: str | None = Field(default=None, pattern=_REASON, max_length=120)
    note: str | None = Field(default=None, max_length=4000)
    photos: list[PhotoIn] = Field(default_factory=list, max_length=MAX_PHOTOS)


@dataclass(frozen=True)
class WorkerDeps:
    """What the endpoints work with, bound by `router`."""

    feeds: Feeds
    photos: PhotoStore
    taxonomy: Taxonomy
    producer: Any
    patrol_topic: str
    event_source: str
    dispatch_url: str
    tolerance: float
    photo_max_bytes: int
    publish_timeout_s: float
    http: httpx.AsyncClient
    # report_id -> record sent: a resent report is answered as the first, without a second record
    taken: OrderedDict[str, str] = field(default_factory=OrderedDict)


deps: Provided[WorkerDeps] = Provided("worker")
Deps = Annotated[WorkerDeps, Depends(deps)]
routes = APIRouter()


@routes.get("/me")
async def me(d: Deps, principal: Reader) -> dict[str, Any]:
    grids = dict(d.feeds.view.all("grid"))
    return {
        "subject": principal.subject,
        "role": principal.role.value,
        "grids": [{"code": c, "name": (grids.get(c) or {}).get("name", "")} for c in principal.divisions],
    }


@routes.get("/work")
async def work(
    d: Deps,
    principal: Reader,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    here = (lat, lon) if lat is not None and lon is not None else None
    cases = [c.to_json(now) for c in d.feeds.board.open.values() if c.visible_to(principal.scope())]
    policies = list(d.feeds.view.all("sla_policy").values())
    return {"now": now.isoformat(), "cases": my_work(cases, here, policies)}


@routes.get("/grids")
async def grids(d: Deps, principal: Reader) -> dict[str, Any]:
    divisions, grid_records = dict(d.feeds.view.all("division")), dict(d.feeds.view.all("grid"))
    features: list[dict[str, Any]] = []
    bbox: list[float] | None = None
    for code in principal.divisions:
        for level in ("grid", "micro_grid"):
            fc = await asyncio.to_thread(
                level_features, divisions, grid_records, level, d.tolerance, within=code
            )
            features += fc["features"]
            if fc["bbox"]:
                b = fc["bbox"]
                bbox = (
                    b
                    if bbox is None
                    else [min(bbox[0], b[0]), min(bbox[1], b[1]), max(bbox[2], b[2]), max(bbox[3], b[3])]
                )
    return {"type": "FeatureCollection", "features": features, "bbox": bbox}


@routes.get("/categories")
async def categories(d: Deps, _: Reader) -> dict[str, Any]:
    return {"version": d.taxonomy.version, "categories": d.taxonomy.categories}


@routes.put("/photos/{sha256}")
async def put_photo(
    d: Deps,
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    request: Request,
    _: Reporter,
    content_type: Annotated[str, Header()] = "image/jpeg",
) -> dict[str, Any]:
    """Stores the bytes under their hash; the hash in the path must be the bytes' own."""
    media = content_type.split(";")[0].strip()
    body = await request.body()
    if not body or len(body) > d.photo_max_bytes:
        raise HTTPException(413, f"a photo is 1 to {d.photo_max_bytes} bytes, downscaled on the phone")
    if media not in MEDIA_EXT:
        raise HTTPException(415, f"photos are {', '.join(MEDIA_EXT)}, not {media[:40]}")
    try:
        stored = await d.photos.put(sha256, media, body)
    except ValueError as e:  # the bytes are not the hash named in the path
        raise HTTPException(422, str(e)) from e
    return stored.to_json()


@routes.get("/photos/{sha256}")
async def get_photo(
    d: Deps, sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")], principal: Reader
) -> Response:
    # read through the cases: a photo of a case outside the caller's grids reads as absent
    if not principal.unrestricted and not d.feeds.board.sees_photo(sha256, principal.scope()):
        raise HTTPException(404, f"no photo {sha256} of a case in your scope")
    found = await d.photos.find(sha256)
    if found is None:
        raise HTTPException(404, f"no photo {sha256}")
    media, data = found
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=86400, immutable"})


@routes.post("/patrol", status_code=202)
async def patrol(d: Deps, report: PatrolIn, principal: Reporter) -> dict[str, Any]:
    # an admin (the simulators, the demo: the command centre's tools) reports for any grid
    if not principal.unrestricted and not in_grids(report.grid_code, principal.divisions):
        raise HTTPException(403, f"grid {report.grid_code} is not one of yours")
    if report.category not in d.taxonomy.codes:
        raise HTTPException(422, f"category {report.category} is not in taxonomy {d.taxonomy.version}")
    if report.reported_at.tzinfo is None:
        raise HTTPException(422, "reported_at needs its UTC offset")
    if report.report_id in d.taken:
        return {"report_id": report.report_id, "status": "accepted", "again": True}
    stored: list[StoredPhoto] = []
    for p in report.photos:
        ref = photo_ref(p.sha256, p.media_type)
        size = await d.photos.size(ref)
        if size is None:
            raise HTTPException(
                409, f"photo {p.sha256} is not uploaded yet: PUT /worker/api/photos/{p.sha256}"
            )
        stored.append(StoredPhoto(p.sha256, ref, p.media_type, size))
    if len({p.sha256 for p in stored}) != len(stored):
        raise HTTPException(422, "the same photo twice")
    now = datetime.now(UTC)
    record = patrol_record(
        report=report.model_dump(mode="json", exclude={"worker_display"}),
        worker_id=principal.subject,
        worker_display=report.worker_display[:1] + "*" if report.worker_display else "",
        photos=stored,
        received_at=now,
    )
    kafka: AIOKafkaProducer | None = d.producer()
    if kafka is None:
        raise HTTPException(503, "the console is starting; the phone will retry")
    headers = CloudEvent(
        type="cn.onegrid.legacy.patrol.v1",
        source=d.event_source,
        id=report.report_id,
        time=now,
        content_type="application/json",
    ).headers()
    value = msgspec.json.encode(record)
    try:
        send = kafka.send_and_wait(
            d.patrol_topic, value=value, key=report.report_id.encode(), headers=headers
        )
        await asyncio.wait_for(send, timeout=d.publish_timeout_s)
    except Exception as e:  # the phone keeps the report queued and resends the same report_id
        raise HTTPException(503, f"the report could not be stored yet ({type(e).__name__}); retry") from e
    d.taken[report.report_id] = now.isoformat()
    while len(d.taken) > REMEMBERED_REPORTS:
        d.taken.popitem(last=False)
    return {"report_id": report.report_id, "status": "accepted", "again": False}


@routes.post("/cases/{case_id}/{action}")
async def act(
    d: Deps,
    case_id: Annotated[str, Path(pattern=_UUID)],
    action: str,
    body: ActionIn,
    request: Request,
    principal: Reader,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """The worker's action, forwarded to dispatch in the worker's own name; photos (uploaded
    first) become the evidence references, so their hashes are in the lifecycle event."""
    if action not in ACTIONS:
        raise HTTPException(404, f"action is one of {', '.join(ACTIONS)}")
    evidence = []
    for p in body.photos:
        ref = photo_ref(p.sha256, p.media_type)
        if await d.photos.size(ref) is None:
            raise HTTPException(409, f"photo {p.sha256} is not uploaded yet")
        evidence.append(ref)
    payload = {"reason": body.reason, "note": body.note, "evidence": evidence}
    headers = {"Authorization": request.headers.get("authorization", "")}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    try:
        resp = await d.http.post(
            f"{d.dispatch_url}/v1/cases/{case_id}/{action}", json=payload, headers=headers
        )
    except httpx.HTTPError as e:
        raise HTTPException(503, f"dispatch is unreachable ({type(e).__name__}); the phone will retry") from e
    try:
        answer = resp.json()
    except ValueError:
        answer = {"detail": resp.text[:300]}
    return JSONResponse(answer, status_code=resp.status_code)


def router(
    *,
    feeds: Feeds,
    photos: PhotoStore,
    taxonomy: Taxonomy,
    producer: Any,
    patrol_topic: str,
    event_source: str,
    dispatch_url: str,
    tolerance: float,
    photo_max_bytes: int,
    publish_timeout_s: float,
    http: httpx.AsyncClient,
) -> APIRouter:
    bound = WorkerDeps(
        feeds=feeds,
        photos=photos,
        taxonomy=taxonomy,
        producer=producer,
        patrol_topic=patrol_topic,
        event_source=event_source,
        dispatch_url=dispatch_url,
        tolerance=tolerance,
        photo_max_bytes=photo_max_bytes,
        publish_timeout_s=publish_timeout_s,
        http=http,
    )
    r = APIRouter(prefix="/worker/api", tags=["worker"], dependencies=[deps.bind(bound)])
    r.include_router(routes)
    return r


__all__ = ["ACTIONS", "SHA256", "router"]
