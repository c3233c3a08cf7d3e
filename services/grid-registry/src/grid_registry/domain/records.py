"""Registry records and the rules every one of them must pass before it is stored and published.

A record is the JSON object of contracts/schemas/registry-record.v1.json (kinds division, grid, staff,
department, station, routing_rule, sla_policy), keyed "<kind>:<code>" on grid.registry.v1. Checks run
in this order, each raising `RecordRejected` with a stable dotted reason:

1. shape: the contract schema of the record's kind (`schema.invalid`);
2. codes: the division / grid / department / MN code patterns and their consistency with the parent
   fields (`division_code.*`, `grid_code.*`, `department_code.*`, `station_code.*`);
3. geometry: GeoJSON rings closed, the polygon valid (`geometry.not_closed`, `geometry.self_intersection`,
   `geometry.invalid`);
4. (with the stored neighbours, see `check_placement`) inside the parent, no overlap with a sibling
   (`geometry.outside_parent`, `geometry.overlaps_sibling`); and `references` must exist
   (`reference.unknown_parent`, `reference.unknown`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import shapely
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from shapely.geometry import MultiPolygon, Polygon, shape

from grid_registry.domain.codes import MalformedGridCode, parse_grid_code
from onegrid.geo import Area
from onegrid_contracts import schemas as contract_schemas

Json = dict[str, Any]
KINDS = ("division", "grid", "staff", "department", "station", "routing_rule", "sla_policy")
SCHEMA_ID = "https://onegrid.cn/contracts/schemas/registry-record.v1.json"
AREA_TOLERANCE = 1e-9  # relative: shared edges of generated cells differ by floating-point rounding
Problem = Literal["invalid", "conflict", "reference", "precondition", "not_found"]

_DIVISION_DIGITS = {"city": 6, "district": 6, "street": 9, "community": 12}
_DEPARTMENT = re.compile(r"^[a-z][a-z0-9_-]{1,40}$")
_MN = re.compile(r"^[A-Za-z0-9_-]{1,24}$")


class RecordRejected(ValueError):
    """A record that may not be stored: `problem` says whose fault (the record itself, a conflict
    with stored records, a missing reference), `reason` is a stable code, `detail` names the field."""

    def __init__(self, problem: Problem, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.problem = problem
        self.reason = reason
        self.detail = detail


def key_of(kind: str, code: str) -> str:
    return f"{kind}:{code}"


def check_record(record: Json) -> Area | None:
    """Shape, codes and geometry of one record; its area as a shapely geometry (None without one)."""
    check_shape(record)
    check_codes(record)
    area = record.get("area")
    return None if area is None else check_geometry(area)


def check_shape(record: Json) -> None:
    kind = record.get("kind")
    if kind not in KINDS:
        raise RecordRejected("invalid", "record.unknown_kind", f"kind {kind!r} is not one of {list(KINDS)}")
    errors = sorted(_validator(str(kind)).iter_errors(record), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(record)"
        raise RecordRejected("invalid", "schema.invalid", f"{kind} {where}: {e.message}")


def check_codes(record: Json) -> None:
    kind, code = record["kind"], record["code"]
    if kind == "division":
        _check_division_code(code, record["level"], record["parent_code"])
    elif kind == "grid":
        _check_grid_code(record)
    elif kind == "department" and not _DEPARTMENT.match(code):
        raise RecordRejected(
            "invalid", "department_code.malformed", f"{code!r} must match {_DEPARTMENT.pattern}"
        )
    elif kind == "station" and not _MN.match(code):
        raise RecordRejected("invalid", "station_code.malformed", f"MN {code!r} must match {_MN.pattern}")


def check_geometry(area: Json) -> Area:
    """A GeoJSON Polygon/MultiPolygon as shapely; refuses open rings and invalid polygons."""
    polygons = [area["coordinates"]] if area.get("type") == "Polygon" else area.get("coordinates", [])
    for p, rings in enumerate(polygons):
        for r, ring in enumerate(rings):
            if len(ring) < 4 or list(ring[0]) != list(ring[-1]):
                raise RecordRejected(
                    "invalid",
                    "geometry.not_closed",
                    f"polygon {p} ring {r}: needs >= 4 positions, first == last",
                )
    geometry = shape(area)
    if not isinstance(geometry, Polygon | MultiPolygon) or geometry.is_empty:
        raise RecordRejected(
            "invalid", "geometry.invalid", "area must be a non-empty Polygon or MultiPolygon"
        )
    if not geometry.is_valid:
        why = shapely.is_valid_reason(geometry)
        reason = "geometry.self_intersection" if "self-intersection" in why.lower() else "geometry.invalid"
        raise RecordRejected("invalid", reason, f"area is not a valid polygon: {why}")
    return geometry


def check_placement(
    code: str, area: Area, parent: tuple[str, Area] | None, siblings: Mapping[str, Area]
) -> None:
    """Inside the parent's area (when it has one), overlapping no sibling by more than rounding."""
    if parent is not None:
        outside = shapely.difference(area, parent[1]).area
        if outside > AREA_TOLERANCE * area.area:
            raise RecordRejected(
                "invalid",
                "geometry.outside_parent",
                f"{code}: {outside / area.area:.2%} of the area lies outside its parent {parent[0]}",
            )
    for other, geometry in sorted(siblings.items()):
        if other == code:
            continue
        shared = shapely.intersection(area, geometry).area
        if shared > AREA_TOLERANCE * min(area.area, geometry.area):
            raise RecordRejected(
                "conflict",
                "geometry.overlaps_sibling",
                f"{code} overlaps its sibling {other} ({shared / area.area:.2%} of its area)",
            )


def uncovered(parent: Area, children: list[Area]) -> float:
    """The share of the parent's area that no child covers (0.0 when the children tile it). Siblings
    may be drawn one at a time, so a gap is reported, not refused."""
    if not children:
        return 1.0
    share = float(shapely.difference(parent, shapely.union_all(children)).area / parent.area)
    return 0.0 if share <= AREA_TOLERANCE else share


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a record with an area sits: its geometric parent and which stored records are its
    siblings (same kind, same `parent` column, and for grids the same sibling group)."""

    parent_kind: str
    parent_code: str
    sibling_levels: tuple[str, ...]


def placement(record: Json) -> Placement | None:
    """None for records without an area, for the city, and for special grids' siblings (专属网格 lie
    across comprehensive grids by design; they are only kept inside their community)."""
    kind, level = record["kind"], record.get("level")
    if kind == "division" and level != "city":
        return Placement("division", record["parent_code"], (str(level),))
    if kind == "grid" and level == "micro_grid":
        return Placement("grid", record["parent_grid_code"], ("micro_grid",))
    if kind == "grid":
        return Placement("division", record["community_code"], ("grid",) if level == "grid" else ())
    return None


def parent_column(record: Json) -> str | None:
    """The stored `parent` of a record: what its siblings share and what its children point at."""
    kind = record["kind"]
    parent: str | None = None
    if kind == "division":
        parent = record.get("parent_code")
    elif kind == "grid":
        parent = record["parent_grid_code"] if record["level"] == "micro_grid" else record["community_code"]
    elif kind == "staff":
        parent = record.get("department")
    return parent


def references(record: Json) -> Iterator[tuple[str, str, str]]:
    """(kind, code, field) of every record this one names; each must exist when it is stored."""
    kind = record["kind"]
    if kind == "division" and record["level"] != "city":
        yield "division", record["parent_code"], "parent_code"
    elif kind == "grid":
        yield "division", record["community_code"], "community_code"
        if record["parent_grid_code"] is not None:
            yield "grid", record["parent_grid_code"], "parent_grid_code"
    elif kind == "staff":
        yield from (("grid", g, "grid_codes") for g in record["grid_codes"])
        if record["department"] is not None:
            yield "department", record["department"], "department"
    elif kind == "department":
        yield "division", record["division_code"], "division_code"
        yield from (("division", d, "jurisdiction_codes") for d in record.get("jurisdiction_codes", []))
        if record["parent_code"] is not None:
            yield "department", record["parent_code"], "parent_code"
    elif kind == "station":
        yield "division", record["division_code"], "division_code"
        if record["grid_code"] is not None:
            yield "grid", record["grid_code"], "grid_code"
    elif kind == "routing_rule":
        yield from (("department", d, "departments") for d in record["departments"])


def unknown_reference(kind: str, code: str, field: str) -> RecordRejected:
    reason = (
        "reference.unknown_parent"
        if field in ("parent_code", "community_code", "parent_grid_code")
        else "reference.unknown"
    )
    return RecordRejected("reference", reason, f"{field}: no {kind} {code!r}")


def same_content(a: Json | None, b: Json | None) -> bool:
    """Equal apart from revision and updated_at (a re-seed of an unchanged record is no change)."""
    if a is None or b is None:
        return a is b
    strip = ("revision", "updated_at")
    return {k: v for k, v in a.items() if k not in strip} == {k: v for k, v in b.items() if k not in strip}


def _check_division_code(code: str, level: str, parent: str | None) -> None:
    digits = _DIVISION_DIGITS[level]
    if not (code.isascii() and code.isdigit() and len(code) == digits):
        raise RecordRejected(
            "invalid", "division_code.malformed", f"{level} code {code!r} must have {digits} digits"
        )
    if level == "city":
        return
    if parent is None:
        raise RecordRejected("invalid", "division_code.no_parent", f"{level} {code} needs a parent_code")
    if level == "district":  # a county-level code shares its city's first four digits
        fits = len(parent) == 6 and parent[:4] == code[:4]
    else:
        fits = len(parent) == digits - 3 and code.startswith(parent)
    if not fits:
        raise RecordRejected(
            "invalid", "division_code.parent_mismatch", f"{level} {code} cannot be a child of {parent}"
        )


def _check_grid_code(record: Json) -> None:
    code = record["code"]
    try:
        parsed = parse_grid_code(code)
    except MalformedGridCode as exc:
        raise RecordRejected("invalid", exc.reason, exc.detail) from exc
    level = "micro_grid" if parsed.micro else ("special" if parsed.is_special else "grid")
    if record["level"] != level:
        raise RecordRejected(
            "invalid", "grid_code.level_mismatch", f"{code} is a {level} code, not {record['level']}"
        )
    if record["community_code"] != parsed.community_code:
        raise RecordRejected(
            "invalid", "grid_code.community_mismatch", f"{code} belongs to community {parsed.community_code}"
        )
    expected_parent = parsed.grid_code if parsed.micro else None
    if record["parent_grid_code"] != expected_parent:
        raise RecordRejected(
            "invalid", "grid_code.parent_mismatch", f"{code}: parent_grid_code must be {expected_parent}"
        )


@cache
def _validator(kind: str) -> Draft202012Validator:
    schemas = contract_schemas()
    registry: Registry[Any] = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas
    )
    return Draft202012Validator({"$ref": f"{SCHEMA_ID}#/$defs/{kind}"}, registry=registry)
