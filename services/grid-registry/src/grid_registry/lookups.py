"""Lookups: point -> grid chain, area -> grids, grid -> staff on duty, category + grid -> departments
and deadlines.

They answer from the registry's own RegistryView, fed by grid.registry.v1 exactly as every other
service's view is, so what the registry answers is what intake and dispatch see (a write shows here
once the relay has published it, normally well under a second). `at` on the route lookup reads the
rules and SLA policies in force at that instant from the database instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query

from grid_registry.domain.records import RecordRejected, check_geometry
from grid_registry.store import RecordStore, utc_text
from onegrid.auth import require
from onegrid.geo import GridChain
from onegrid.topics import dispatch_orders_topic
from registry_client import CHINA_STANDARD_TIME, RegistryView, due_at, match_route, match_sla

Json = dict[str, Any]
TIERS = ("grid", "community", "street", "district", "city")


def router(view: RegistryView, store: RecordStore) -> APIRouter:
    # Lookups only read (POST /lookup/area takes a polygon in its body): any authenticated role.
    r = APIRouter(prefix="/v1", tags=["lookups"], dependencies=[Depends(require("read", "registry"))])

    @r.get("/summary")
    async def summary() -> dict[str, int]:
        """How many current records of each kind the changelog holds."""
        return {kind: len(items) for kind, items in view.records.items()}

    @r.get("/lookup/point")
    async def point(
        lon: Annotated[float, Query(ge=-180, le=180)], lat: Annotated[float, Query(ge=-90, le=90)]
    ) -> Json:
        """The units containing a WGS-84 point, district down to micro-grid, plus special grids."""
        chain = (await view.grid_index_async()).lookup(lon, lat)
        if chain is None:
            raise RecordRejected(
                "not_found", "lookup.outside", f"({lon}, {lat}) lies in no district of the registry"
            )
        return _chain_json(view, chain)

    @r.post("/lookup/area")
    async def area(geometry: Annotated[Json, Body(description="GeoJSON Polygon or MultiPolygon")]) -> Json:
        """The grids and micro-grids an area enters, and the lowest unit owning all of it."""
        shaped = check_geometry(geometry) if geometry.get("type") in ("Polygon", "MultiPolygon") else None
        if shaped is None:
            raise RecordRejected(
                "invalid", "geometry.invalid", "body must be a GeoJSON Polygon or MultiPolygon"
            )
        index = await view.grid_index_async()
        owner = index.owning_tier(shaped)
        return {
            "grids": index.covering(shaped, "grid"),
            "micro_grids": index.covering(shaped, "micro_grid"),
            "specials": index.covering(shaped, "special"),
            "owner": None if owner is None else {"level": owner.level, "code": owner.code},
        }

    @r.get("/lookup/staff")
    async def staff(grid: str, at: datetime | None = None) -> Json:
        """Active staff assigned to the grid (or, for a micro-grid, to it and its grid) who are on duty
        at `at` (default now), grid leaders first."""
        record = view.get("grid", grid)
        if record is None:
            raise RecordRejected("not_found", "record.not_found", f"no grid {grid}")
        when = (at or datetime.now(UTC)).astimezone(CHINA_STANDARD_TIME)
        grids = {grid, record.get("parent_grid_code")} - {None}
        order = {"grid_leader": 0, "grid_worker": 1, "micro_grid_worker": 2, "volunteer": 3}
        people = [
            s
            for s in view.all("staff").values()
            if s.get("active") and grids & set(s.get("grid_codes", [])) and _on_duty(s.get("duty"), when)
        ]
        people.sort(key=lambda s: (order.get(s["role"], 9), s["code"]))
        return {"grid": grid, "at": utc_text(when), "staff": people}

    @r.get("/lookup/route")
    async def route(
        category: str,
        severity: Annotated[int, Query(ge=1, le=4)] = 4,
        grid: str | None = None,
        tier: str | None = None,
        network: str | None = None,
        at: datetime | None = None,
    ) -> Json:
        """The departments a case goes to and its deadlines. `grid` places the case (its codes match
        rules' division codes; the tier defaults to "grid"); `at` asks what was in force then."""
        if tier is not None and tier not in TIERS:
            raise RecordRejected("invalid", "lookup.bad_tier", f"tier {tier!r} is not one of {list(TIERS)}")
        codes = [grid[:6], grid[:9], grid[:12], grid[:15], grid] if grid else []
        tier = tier or ("grid" if grid else None)
        if at is None:
            rules, policies = list(view.all("routing_rule").values()), list(view.all("sla_policy").values())
        else:
            rules, policies = (
                await store.records("routing_rule", at=at),
                await store.records("sla_policy", at=at),
            )
        decided = match_route(rules, category, severity, codes=codes, tier=tier, network=network)
        if decided is None:
            raise RecordRejected(
                "not_found", "route.no_rule", f"no routing rule for {category} severity {severity}"
            )
        policy = match_sla(policies, category, severity)
        start = at or datetime.now(UTC)
        return {
            "category": category,
            "severity": severity,
            "rule": decided.rule,
            "departments": list(decided.departments),
            "topics": [dispatch_orders_topic(d) for d in decided.departments],
            "whistle": decided.whistle,
            "sla": None
            if policy is None
            else {
                "policy": policy["code"],
                "calendar": policy["calendar"],
                "acknowledge_by": utc_text(due_at(start, policy["acknowledge_within_s"], policy)),
                "resolve_by": utc_text(due_at(start, policy["resolve_within_s"], policy)),
            },
        }

    return r


def _chain_json(view: RegistryView, chain: GridChain) -> Json:
    def unit(kind: str, code: str | None) -> Json | None:
        if code is None:
            return None
        record = view.get(kind, code) or {}
        return {"code": code, "name": record.get("name")}

    return {
        "district": unit("division", chain.district),
        "street": unit("division", chain.street),
        "community": unit("division", chain.community),
        "grid": unit("grid", chain.grid),
        "micro_grid": unit("grid", chain.micro_grid),
        "specials": [unit("grid", c) for c in chain.specials],
        "leaf": chain.leaf,
    }


def _on_duty(duty: Json | None, when: datetime) -> bool:
    if duty is None:
        return True
    hhmm = when.strftime("%H:%M")
    return when.isoweekday() in duty["weekdays"] and duty["start"] <= hhmm < duty["end"]
