"""A grid worker's day, as the phone app shows it: the open cases of the worker's grids, nearest
first, each with what is expected of the worker; and the patrol record the app's report becomes.

Pure: the board's cases (OpenCase.to_json) and the caller's facts in, JSON out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from registry_client import allows_self_handle, match_sla

Json = dict[str, Any]

# What the worker is expected to do in each state of a case of the grid (no department holds it and
# the SLA leaves its category to the grid: the worker handles it on the spot; a department resolved
# it: the worker checks on site; otherwise the worker follows it and may whistle).
SELF_HANDLE_STATES = frozenset({"registered", "reopened"})
VERIFY_STATES = frozenset({"resolved"})
SUPPLEMENT_STATES = frozenset({"returned"})
EARTH_M = 6_371_000.0
SHA256 = re.compile(r"^[0-9a-f]{64}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MEDIA_EXT = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
MAX_PHOTOS = 6


def expected_action(case: Json, policies: Iterable[Json]) -> str:
    """self_handle | verify | supplement | follow. `policies`: the registry's SLA policies, read as
    dispatch reads them, so the app offers a self-handling only where dispatch will take it."""
    state = case.get("state")
    if state in SELF_HANDLE_STATES and not case.get("department") and self_handle_allowed(case, policies):
        return "self_handle"
    if state in VERIFY_STATES:
        return "verify"
    if state in SUPPLEMENT_STATES:
        return "supplement"
    return "follow"


def self_handle_allowed(case: Json, policies: Iterable[Json]) -> bool:
    category, severity = case.get("category"), case.get("severity")
    if not category or not severity:
        return False
    return allows_self_handle(match_sla(policies, str(category), int(severity)), str(category))


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lat, lon) points in metres (haversine)."""
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * EARTH_M * math.asin(math.sqrt(h))


def my_work(cases: Iterable[Json], here: tuple[float, float] | None, policies: Iterable[Json]) -> list[Json]:
    """The cases with `expected` and `distance_m` (None without a point or a position), nearest
    first; without the phone's position, the most urgent deadline first."""
    out = []
    policies = list(policies)
    for c in cases:
        point = (c["lat"], c["lon"]) if c.get("lat") is not None else None
        d = None if here is None or point is None else round(distance_m(here, point))
        out.append(c | {"expected": expected_action(c, policies), "distance_m": d})

    def key(c: Json) -> tuple[float, str]:
        deadlines = c.get("deadlines") or {}
        due = min((v for v in deadlines.values() if v), default="9999")
        d = c["distance_m"]
        return (math.inf if d is None else d, due) if here is not None else (0.0, due)

    return sorted(out, key=key)


def photo_ref(sha256: str, media_type: str) -> str:
    """The object-store key of a photo: content-addressed, so the same bytes are stored once."""
    if not SHA256.match(sha256):
        raise ValueError("a photo is named by the lowercase hex SHA-256 of its bytes")
    if media_type not in MEDIA_EXT:
        raise ValueError(f"photos are {', '.join(MEDIA_EXT)}, not {media_type[:40]}")
    return f"photos/{sha256[:2]}/{sha256}.{MEDIA_EXT[media_type]}"


@dataclass(frozen=True)
class StoredPhoto:
    sha256: str
    ref: str
    media_type: str
    bytes: int

    def to_json(self) -> Json:
        return {"sha256": self.sha256, "ref": self.ref, "media_type": self.media_type, "bytes": self.bytes}


def in_grids(grid_code: str, scope_codes: Sequence[str]) -> bool:
    """Whether `grid_code` is one of the worker's grids or inside one (codes nest by prefix)."""
    return any(grid_code.startswith(code) for code in scope_codes)


def patrol_record(
    *,
    report: Json,
    worker_id: str,
    worker_display: str,
    photos: Sequence[StoredPhoto],
    received_at: datetime,
) -> Json:
    """The legacy.patrol.v1 record (contracts/legacy/patrol.v1.schema.json) of a validated report:
    the worker from the token, the photos as stored, the time the console took it."""
    return {
        "report_id": report["report_id"],
        "worker": {"id": worker_id, "display": worker_display},
        "grid_code": report["grid_code"],
        "category": report["category"],
        "description": report["description"],
        "severity": report["severity"],
        "location": report["location"],
        "photos": [p.to_json() for p in photos],
        "reported_at": report["reported_at"],
        "received_at": received_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
