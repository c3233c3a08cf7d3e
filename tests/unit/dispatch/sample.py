"""A small registry and case events for dispatch tests (shapes as on grid.registry.v1 and cases.v1)."""

from __future__ import annotations

import json
import uuid
from typing import Any

T0 = "2026-02-28T16:00:00Z"


def department(code: str, tier: str, division: str, parent: str | None = None) -> dict[str, Any]:
    return {
        "kind": "department",
        "code": code,
        "revision": 1,
        "updated_at": T0,
        "name": code,
        "active": True,
        "tier": tier,
        "division_code": division,
        "parent_code": parent,
        "category_codes": [],
    }


def rule(
    code: str, categories: list[str], departments: list[str], priority: int = 10, **match: Any
) -> dict[str, Any]:
    return {
        "kind": "routing_rule",
        "code": code,
        "revision": 7,
        "updated_at": T0,
        "name": code,
        "active": True,
        "priority": priority,
        "match": {
            "category_codes": categories,
            "networks": match.get("networks", []),
            "severity_levels": match.get("severity_levels", []),
            "division_codes": match.get("division_codes", []),
        },
        "departments": departments,
        "whistle": match.get("whistle", False),
    }


def sla(
    code: str,
    ack_s: int,
    resolve_s: int,
    categories: list[str] | None = None,
    levels: list[int] | None = None,
    self_handle: list[str] | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "kind": "sla_policy",
        "code": code,
        "revision": 1,
        "updated_at": T0,
        "name": code,
        "active": True,
        "match": {"category_codes": categories or [], "severity_levels": levels or []},
        "acknowledge_within_s": ack_s,
        "resolve_within_s": resolve_s,
        "calendar": "24x7",
    }
    if self_handle is not None:
        record["self_handle_categories"] = self_handle
    return record


def grid() -> dict[str, Any]:
    return {
        "kind": "grid",
        "code": "321003009001003",
        "revision": 412,
        "updated_at": T0,
        "name": "新盛第一社区3号网格",
        "active": True,
        "level": "grid",
        "community_code": "321003009001",
        "parent_grid_code": None,
        "special_kind": None,
        "area": {
            "type": "Polygon",
            "coordinates": [[[119.408, 32.39], [119.418, 32.39], [119.418, 32.399], [119.408, 32.39]]],
        },
    }


def registry_records(
    ack_s: int = 1800, resolve_s: int = 86400, extra_departments: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Street, district and city command centres; two district departments under hj-gov; one rule."""
    return [
        department("hj-gov", "district", "321003"),
        department("hj-urban-mgmt", "district", "321003", parent="hj-gov"),
        department("hj-eco-env", "district", "321003", parent="hj-gov"),
        department("xs-command", "street", "321003009"),
        department("hj-command", "district", "321003"),
        department("yz-command", "city", "321000"),
        *[department(code, "district", "321003", parent="hj-gov") for code in extra_departments],
        rule(
            "urban-street-vending-hj", ["city.street_vending"], ["hj-urban-mgmt"], division_codes=["321003"]
        ),
        rule("env-air", ["env.air.exceedance"], ["hj-eco-env"]),
        # the grid worker may handle a street-vending case on the spot, never an air exceedance
        sla("default", ack_s, resolve_s, self_handle=["city.street_vending"]),
        sla("env-fast", max(1, ack_s // 2), max(1, resolve_s // 2), categories=["env.air.exceedance"]),
        grid(),
    ]


def as_records(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in records:
        out.setdefault(r["kind"], {})[r["code"]] = r
    return out


def case_event(
    *,
    category: str = "city.street_vending",
    level: int = 4,
    tier: str = "street",
    event_type: str = "case.reported",
    case_id: str | None = None,
    network: str = "party",
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "case_id": case_id or str(uuid.uuid4()),
        "source": {
            "network": network,
            "source_id": "MQRJ20260301000123",
            "topic": "legacy.party.v1",
            "partition": 1,
            "offset": 48213,
            "parser_version": "party-1.0.0",
            "crosswalk_version": "2026.1",
        },
        "linked_sources": [],
        "merge": None,
        "times": {
            "occurred_at": "2026-03-01T01:40:00Z",
            "reported_at": "2026-03-01T02:15:30Z",
            "received_at": "2026-03-01T02:15:31.204000Z",
            "occurred_text": None,
            "reported_text": None,
            "source_zone": "Asia/Shanghai",
        },
        "category": {
            "code": category,
            "family": "public_space",
            "taxonomy_version": "2026.1",
            "source_code": None,
        },
        "severity": {"level": level, "source_value": None},
        "location": {
            "point": {"lat": 32.3942, "lon": 119.4129},
            "area": None,
            "original": {"system": "WGS84", "lat": 32.3942, "lon": 119.4129},
            "address": "扬州市邗江区新盛街道新盛路与文昌西路交叉口",
            "inside_city": True,
        },
        "division": {
            "district": "321003",
            "street": "321003009",
            "community": "321003009001",
            "grid": "321003009001003",
            "micro_grid": None,
            "tier": tier,
        },
        "title": "新盛路路口流动摊贩占道经营",
        "description": "早高峰时段三辆流动餐车占用人行道。",
        "reporter": {"name": "王建国", "phone": "13805271234", "id_number": None, "org": None},
        "attributes": {},
    }


def case_bytes(**kw: Any) -> bytes:
    return json.dumps(case_event(**kw), ensure_ascii=False).encode()
