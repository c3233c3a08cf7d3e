"""Grid-registry HTTP API: records (create, read, update, delete, history, as-of), GeoJSON import/export.

Every record kind has the same resource shape: /v1/records/{kind}/{code}. Writes are validated (see
domain/records.py) and refused with 4xx and a body {"error": <reason>, "detail": <what and where>}:
422 a malformed record or an unknown reference, 409 a conflict with stored records (sibling overlap,
exists, still referenced), 412 a stale If-Match, 404 nothing there. Reads carry an ETag (the
revision); If-None-Match answers 304, If-Match on PUT/DELETE guards against lost updates.

Access (onegrid.auth): every authenticated role reads; only admins write (records and imports). A
staff member's name and phone (the contract's `x-personal-data` fields) are shown in full only to
roles with personal-data rights (operators, grid workers, admins; each such read is logged) and
masked for the others (departments, auditors, BI readers): `王**`, `*******1234`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from shapely.geometry import shape

from grid_registry.domain.personal import masked, personal_fields
from grid_registry.domain.records import RecordRejected, uncovered
from grid_registry.registry import Registry
from onegrid.auth import caller, log_personal_data_read, require
from onegrid.provided import Provided

Kind = Literal["division", "grid", "staff", "department", "station", "routing_rule", "sla_policy"]
Json = dict[str, Any]
STATUS = {"invalid": 422, "reference": 422, "conflict": 409, "precondition": 412, "not_found": 404}
SPATIAL = {"division", "grid"}
READ = [Depends(require("read", "registry"))]
WRITE = [Depends(require("write", "registry"))]


def install_error_handler(app: FastAPI) -> None:
    async def rejected(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RecordRejected)
        return JSONResponse({"error": exc.reason, "detail": exc.detail}, status_code=STATUS[exc.problem])

    app.add_exception_handler(RecordRejected, rejected)


def etag(record: Json) -> str:
    return f'"{record["revision"]}"'


def revision_of(header: str | None) -> int | None:
    """The revision named by an If-Match header ("3" or W/"3"); None for absent or "*"."""
    if header is None or header.strip() == "*":
        return None
    raw = header.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise RecordRejected("precondition", "etag.malformed", f"If-Match {header!r} is not a revision ETag")
    return int(raw)


def shown(request: Request, kind: str, records: list[Json]) -> list[Json]:
    """`records` as the caller may see them: personal fields masked unless its role has the right
    (then the read is logged)."""
    if kind not in personal_fields() or not records:
        return records
    principal = caller(request)
    if principal is None or not principal.sees_personal_data:
        return [masked(rec) for rec in records]
    log_personal_data_read(principal, f"registry {kind}", (rec.get("code") for rec in records))
    return records


deps: Provided[Registry] = Provided("grid_registry")
RegistryDep = Annotated[Registry, Depends(deps)]
routes = APIRouter()


@routes.get("/records/{kind}", dependencies=READ)
async def list_records(
    registry: RegistryDep,
    request: Request,
    kind: Kind,
    parent: str | None = None,
    level: str | None = None,
    active: bool | None = None,
    as_of: datetime | None = None,
    after: Annotated[str | None, Query(description="last code of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Json:
    """Records of one kind in code order; page with `after` = the previous page's `next_after`.
    `parent`: division parent, grid community (or parent grid for micro-grids), staff department."""
    items = await registry.store.records(
        kind, at=as_of, parent=parent, level=level, active=active, after=after, limit=limit
    )
    next_after = items[-1]["code"] if len(items) == limit else None
    return {"items": shown(request, kind, items), "next_after": next_after}


@routes.get("/records/{kind}/{code:path}", dependencies=READ, responses={304: {}, 404: {}})
async def get_record(
    registry: RegistryDep,
    request: Request,
    kind: Kind,
    code: str,
    response: Response,
    as_of: datetime | None = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Any:
    """One record, current or as it was in force at `as_of`."""
    record = await registry.store.get(kind, code, at=as_of)
    if record is None:
        raise RecordRejected(
            "not_found", "record.not_found", f"no {kind} {code}" + (f" at {as_of}" if as_of else "")
        )
    if if_none_match is not None and etag(record) in {
        t.strip().removeprefix("W/") for t in if_none_match.split(",")
    }:
        return Response(status_code=304, headers={"ETag": etag(record)})
    response.headers["ETag"] = etag(record)
    return shown(request, kind, [record])[0]


@routes.post("/records/{kind}", dependencies=WRITE, status_code=201)
async def create_record(
    registry: RegistryDep, kind: Kind, response: Response, payload: Annotated[Json, Body()]
) -> Json:
    """Create a record (`code` in the body); 409 if it exists."""
    code = payload.get("code")
    if not isinstance(code, str) or not code:
        raise RecordRejected("invalid", "schema.invalid", f"{kind} code: required, a non-empty string")
    written = await registry.put(kind, code, payload, create=True)
    assert written.record is not None
    response.headers["ETag"] = etag(written.record)
    response.headers["Location"] = f"/v1/records/{kind}/{code}"
    return written.record


@routes.put("/records/{kind}/{code:path}", dependencies=WRITE)
async def put_record(
    registry: RegistryDep,
    kind: Kind,
    code: str,
    response: Response,
    payload: Annotated[Json, Body()],
    if_match: Annotated[str | None, Header()] = None,
) -> Json:
    """Create or replace a record; an unchanged body is no new revision."""
    written = await registry.put(kind, code, payload, if_match=revision_of(if_match))
    assert written.record is not None
    response.headers["ETag"] = etag(written.record)
    return written.record


@routes.delete("/records/{kind}/{code:path}", dependencies=WRITE, status_code=204)
async def delete_record(
    registry: RegistryDep, kind: Kind, code: str, if_match: Annotated[str | None, Header()] = None
) -> Response:
    """Delete a record: a tombstone on grid.registry.v1; its history stays queryable."""
    await registry.delete(kind, code, if_match=revision_of(if_match))
    return Response(status_code=204)


@routes.get("/history/{kind}/{code:path}", dependencies=READ)
async def history(registry: RegistryDep, request: Request, kind: Kind, code: str) -> list[Json]:
    """Every version of a record with the interval it was in force."""
    versions = await registry.store.history(kind, code)
    if not versions:
        raise RecordRejected("not_found", "record.not_found", f"no {kind} {code} ever")
    records = shown(request, kind, [v["record"] for v in versions if v["record"] is not None])
    bodies = iter(records)
    return [{**v, "record": next(bodies) if v["record"] is not None else None} for v in versions]


@routes.get("/coverage/{kind}/{code:path}", dependencies=READ)
async def coverage(registry: RegistryDep, kind: Literal["division", "grid"], code: str) -> Json:
    """How completely a unit's children tile it: `uncovered` is the share of its area outside
    every child (0 when they tile it), per child level (micro-grids of a grid; streets,
    communities or grids of a division)."""
    record = await registry.store.get(kind, code)
    if record is None or record.get("area") is None:
        raise RecordRejected("not_found", "record.not_found", f"no {kind} {code} with an area")
    parent = shape(record["area"])
    levels = ["micro_grid"] if kind == "grid" else ["district", "street", "community", "grid"]
    report = {}
    async with registry.store.engine.connect() as conn:
        for child_kind in ("division", "grid") if kind == "division" else ("grid",):
            for level in levels:
                found = await registry.store.areas(conn, child_kind, code, [level])
                if found:
                    report[level] = {
                        "children": len(found),
                        "uncovered": uncovered(parent, [shape(a) for a in found.values()]),
                    }
    return {"kind": kind, "code": code, "levels": report}


@routes.post("/import/geojson", dependencies=WRITE)
async def import_geojson(registry: RegistryDep, collection: Annotated[Json, Body()]) -> Json:
    """A FeatureCollection of divisions or grids: each feature's properties are the record's fields
    (kind defaults to grid, code to the feature id), its geometry the area. All or nothing."""
    bodies = [_record_of(f, i) for i, f in enumerate(_features(collection))]
    written = await registry.put_batch(bodies)
    return {"records": len(written), "changed": sum(w.changed for w in written)}


@routes.get("/export/geojson", dependencies=READ)
async def export_geojson(
    registry: RegistryDep,
    kind: Literal["division", "grid"] = "grid",
    parent: str | None = None,
    level: str | None = None,
    as_of: datetime | None = None,
) -> Json:
    """Records with an area as a GeoJSON FeatureCollection (RFC 7946, lon/lat)."""
    records = await registry.store.records(kind, at=as_of, parent=parent, level=level)
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": rec["code"],
                "geometry": rec["area"],
                "properties": {k: v for k, v in rec.items() if k != "area"},
            }
            for rec in records
            if rec.get("area") is not None
        ],
    }


def router(registry: Registry) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["records"], dependencies=[deps.bind(registry)])
    r.include_router(routes)
    return r


def _features(collection: Json) -> list[Json]:
    if collection.get("type") != "FeatureCollection" or not isinstance(collection.get("features"), list):
        raise RecordRejected(
            "invalid", "geojson.not_feature_collection", "body must be a GeoJSON FeatureCollection"
        )
    if not collection["features"]:
        raise RecordRejected("invalid", "geojson.empty", "the FeatureCollection has no features")
    features: list[Json] = collection["features"]
    return features


def _record_of(feature: Any, index: int) -> Json:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise RecordRejected("invalid", "geojson.not_feature", f"features[{index}] is not a GeoJSON Feature")
    props = dict(feature.get("properties") or {})
    props.setdefault("kind", "grid")
    if feature.get("id") is not None:
        props.setdefault("code", str(feature["id"]))
    if props["kind"] not in SPATIAL or not isinstance(props.get("code"), str):
        raise RecordRejected(
            "invalid", "geojson.bad_properties", f"features[{index}]: kind division|grid and a code"
        )
    props["area"] = feature.get("geometry")
    return props
