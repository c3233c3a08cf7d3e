"""The seed: every record `make up` loads into an empty registry, built deterministically.

Divisions: the whole vendored Yangzhou hierarchy (city, 7 districts, 98 streets, 1,437 communities);
areas for the 6 real district outlines (321071, a zone without one, has no area) and for every street and community of 邗江区 (321003), whose grids
and micro-grids (and three special-purpose grids) come from `generate_city(seed, ["321003"])`.
Departments, routing rules for every taxonomy category, SLA policies, monitoring stations (the MNs of
the HJ 212 conformance packets plus generated air and water stations) and a few staff per grid.

Records are returned without `revision` and `updated_at`: the writer stamps those. Seeding twice
changes nothing, because the writer skips records whose content is unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping

from grid_registry.domain.divisions import CITY_CODE
from grid_registry.domain.geography import DEFAULT_SEED, SPECIAL_SITES, CityGeography, generate_city
from grid_registry.domain.gridgen import points_inside
from grid_registry.domain.seed_catalog import (
    AIR_LIMITS,
    DEPARTMENTS,
    GENERATED_AIR_STATIONS,
    GENERATED_WATER_STATIONS,
    GIVEN,
    HANJIANG,
    KNOWN_STATIONS,
    PRIMARY,
    SELF_HANDLE_CATEGORIES,
    SLA_POLICIES,
    STREET_ENFORCED,
    SURNAMES,
    WATER_LIMITS,
)
from onegrid.geo import Cell
from onegrid_contracts import taxonomy_file
from registry_client.workcal import WorkCalendar

Json = dict[str, Any]
ESCALATING_SEVERITIES = [1, 2]


def seed_records(seed: int = DEFAULT_SEED) -> list[Json]:
    """All seed records, parents before children (divisions, grids, departments, staff, ...)."""
    geography = generate_city(seed, [HANJIANG])
    records = list(_divisions(geography))
    records += _grids(geography)
    records += _departments(geography)
    records += _staff(geography)
    records += _routing_rules(category_codes())
    records += _sla_policies()
    records += _stations(geography, np.random.default_rng([seed, 212]))
    return records


def category_codes() -> list[str]:
    """Every category code of contracts/taxonomy/categories.v1.json, in file order."""
    taxonomy = json.loads(taxonomy_file("categories.v1.json").read_text(encoding="utf-8"))
    return [c["code"] for group in taxonomy["groups"] for c in group["categories"]]


def _area(cell: Cell | None) -> Json | None:
    return None if cell is None else dict(mapping(cell.geometry))


def _divisions(geo: CityGeography) -> Iterator[Json]:
    for d in geo.divisions:
        yield {
            "kind": "division",
            "code": d.code,
            "name": d.name,
            "active": True,
            "level": d.level,
            "parent_code": None if d.level == "city" else d.parent,
            "area": _area(geo[d.code]) if d.code in geo else None,
        }


def _grids(geo: CityGeography) -> Iterator[Json]:
    kinds = {s.name: s.kind for s in SPECIAL_SITES}
    for cell in geo.cells:
        if cell.level not in ("grid", "micro_grid", "special"):
            continue
        special = next((k for suffix, k in kinds.items() if cell.name.endswith(suffix)), "other")
        yield {
            "kind": "grid",
            "code": cell.code,
            "name": cell.name,
            "active": True,
            "level": cell.level,
            "community_code": cell.code[:12],
            "parent_grid_code": cell.parent if cell.level == "micro_grid" else None,
            "special_kind": special if cell.level == "special" else None,
            "area": _area(cell),
        }


def _departments(geo: CityGeography) -> Iterator[Json]:
    streets = [d.code for d in geo.divisions.children_of(HANJIANG)]
    for dept in DEPARTMENTS:
        handles = sorted(c for c, owners in PRIMARY.items() if dept.code in owners)
        if dept.code == "jiedao_zhifa":
            handles = sorted(STREET_ENFORCED)
        record: Json = {
            "kind": "department",
            "code": dept.code,
            "name": dept.name,
            "active": True,
            "tier": dept.tier,
            "division_code": dept.division_code,
            "parent_code": None,
            "category_codes": handles,
        }
        if dept.tier == "street":
            record["jurisdiction_codes"] = streets
        yield record


def _person(n: int) -> tuple[str, str]:
    name = SURNAMES[n % len(SURNAMES)] + GIVEN[(n * 7) % len(GIVEN)] + GIVEN[(n * 13 + 5) % len(GIVEN)]
    return name, f"1390514{n % 10000:04d}"  # fictitious numbers: personal data is never seeded


def _staff(geo: CityGeography) -> Iterator[Json]:
    n = 0

    def person(code: str, role: str, grids: list[str], duty: Json | None) -> Json:
        nonlocal n
        n += 1
        name, phone = _person(n)
        record: Json = {
            "kind": "staff",
            "code": code,
            "name": name,
            "active": True,
            "role": role,
            "phone": phone,
            "grid_codes": grids,
            "department": None,
        }
        if duty is not None:
            record["duty"] = duty
        return record

    office = {"weekdays": [1, 2, 3, 4, 5], "start": "08:30", "end": "17:30"}
    weekend = {"weekdays": [6, 7], "start": "09:00", "end": "17:00"}
    for community in geo.at_level("community"):
        grids = [c.code for c in geo.children_of(community.code) if c.level == "grid"]
        yield person(f"{community.code}/leader", "grid_leader", grids, None)
        for grid in grids:
            yield person(f"{grid}/worker", "grid_worker", [grid], office)
            yield person(f"{grid}/volunteer", "volunteer", [grid], weekend)
            for micro in geo.children_of(grid):
                yield person(f"{micro.code}/worker", "micro_grid_worker", [micro.code], None)


def _routing_rules(categories: list[str]) -> Iterator[Json]:
    """Per category: the district rule (priority 100); street enforcement at grid..street tiers
    (priority 50); severity I-II adds 应急管理 and blows the whistle (priority 10)."""
    for category in categories:
        owners = list(PRIMARY[category])
        slug = category.replace(".", "-").replace("_", "-")
        yield _rule(f"{slug}", f"{category} 责任部门", 100, category, [], [], owners, whistle=False)
        if category in STREET_ENFORCED:
            tiers = ["grid", "community", "street"]
            yield _rule(
                f"{slug}-street", f"{category} 街道执法", 50, category, [], tiers, ["jiedao_zhifa"], False
            )
        escalated = owners + ([] if "yingji" in owners else ["yingji"])
        yield _rule(
            f"{slug}-major",
            f"{category} 重大以上吹哨",
            10,
            category,
            ESCALATING_SEVERITIES,
            [],
            escalated,
            True,
        )


def _rule(
    code: str,
    name: str,
    priority: int,
    category: str,
    severities: list[int],
    tiers: list[str],
    departments: list[str],
    whistle: bool,
) -> Json:
    match: Json = {
        "category_codes": [category],
        "networks": [],
        "severity_levels": severities,
        "division_codes": [],
    }
    if tiers:
        match["tiers"] = tiers
    return {
        "kind": "routing_rule",
        "code": code,
        "name": name,
        "active": True,
        "priority": priority,
        "match": match,
        "departments": departments,
        "whistle": whistle,
    }


def _sla_policies() -> Iterator[Json]:
    for code, name, categories, severities, ack, resolve, calendar in SLA_POLICIES:
        record: Json = {
            "kind": "sla_policy",
            "code": code,
            "name": name,
            "active": True,
            "match": {"category_codes": list(categories), "severity_levels": list(severities)},
            "acknowledge_within_s": ack,
            "resolve_within_s": resolve,
            "calendar": calendar,
        }
        if code in SELF_HANDLE_CATEGORIES:
            record["self_handle_categories"] = list(SELF_HANDLE_CATEGORIES[code])
        if calendar == "working_days":
            # Holidays and make-up days come from the official calendar; the record names its version,
            # so a new calendar is a new revision of the policy (the registry versions them together).
            record["business_hours"] = {"start": "08:30", "end": "17:30"}
            record["calendar_version"] = WorkCalendar().version
        yield record


def _stations(geo: CityGeography, rng: np.random.Generator) -> Iterator[Json]:
    generated = [
        (f"321003A{i:07d}", "22", f"邗江空气监测站{i:02d}") for i in range(1, GENERATED_AIR_STATIONS + 1)
    ]
    generated += [
        (f"321003W{i:07d}", "32", f"邗江水污染源{i:02d}") for i in range(1, GENERATED_WATER_STATIONS + 1)
    ]
    communities = geo.at_level("community")
    for mn, st, name in (*KNOWN_STATIONS, *generated):
        community = communities[int(rng.integers(len(communities)))]
        lon, lat = (round(float(v), 6) for v in points_inside(community.geometry, 1, rng)[0])
        grids = geo.children_of(community.code)
        grid = next(
            (c.code for c in grids if c.level == "grid" and shapely.contains_xy(c.geometry, lon, lat)), None
        )
        air = st == "22"
        yield {
            "kind": "station",
            "code": mn,
            "name": name,
            "active": True,
            "station_type": "air" if air else "pollution_source",
            "system_code": st,
            "point": {"lon": lon, "lat": lat},
            "division_code": community.code[:9],
            "grid_code": grid,
            "limits": [
                {"pollutant": p, "statistic": "Avg", "max": m, "unit": u, "standard": s}
                for p, m, u, s in (AIR_LIMITS if air else WATER_LIMITS)
            ],
        }


__all__ = ["CITY_CODE", "category_codes", "seed_records"]
