"""The CaseEvent published on `cases.v1`, as msgspec Structs: declared here once, written by intake and
read by dispatch (which decodes only the parts it routes on, with these same types).

Mirrors `contracts/schemas/case-event.v1.json` field for field; `tests/contract` validates encoded Structs
against the schema and decodes the schema's examples into these Structs, so the two cannot drift.

Every field is required and always encoded (nullable ones as `null`), exactly as the schema says.
Decoding ignores fields it does not know: a later minor revision of the contract may add optional fields,
and an older consumer must keep working (see contracts/README.md, "Versioning").
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec

Network = Literal["env", "emergency", "safety", "party", "open311", "patrol"]
EventType = Literal["case.reported", "case.amended", "case.cancelled", "case.linked"]
CoordinateSystem = Literal["WGS84", "GCJ02", "BD09", "CGCS2000", "none"]
Tier = Literal["grid", "community", "street", "district", "city"]

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
Latitude = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Longitude = Annotated[float, msgspec.Meta(ge=-180, le=180)]
ReasonCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$", max_length=120)]
UtcTime = Annotated[datetime, msgspec.Meta(tz=True)]
DistrictCode = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$")]
StreetCode = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{9}$")]
CommunityCode = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{12}$")]
GridCode = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{15}$")]
MicroGridCode = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{18}$")]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]

# [longitude, latitude]: GeoJSON (RFC 7946) order, unlike `Point`.
Position = tuple[Longitude, Latitude]
LinearRing = Annotated[tuple[Position, ...], msgspec.Meta(min_length=4)]

CE_TYPES: dict[str, str] = {
    "case.reported": "cn.onegrid.case.reported.v1",
    "case.amended": "cn.onegrid.case.amended.v1",
    "case.cancelled": "cn.onegrid.case.cancelled.v1",
    "case.linked": "cn.onegrid.case.linked.v1",
}
"""The CloudEvents `ce_type` header for each `event_type`."""


class _Contract(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=False):
    """Keyword-only, immutable, every field encoded (subclasses repeat `frozen=True` for mypy)."""


_ZERO = timedelta(0)


def _require_utc(name: str, value: datetime | None) -> None:
    # `tzinfo is UTC` first: what the system builds itself, without a call and a timedelta per check.
    if value is not None and value.tzinfo is not UTC and value.utcoffset() != _ZERO:
        raise ValueError(f"{name} must be in UTC, got offset {value.utcoffset()}")


class SourceRef(_Contract, frozen=True):
    """Where one source record lives; enough to find its raw bytes again."""

    network: Network
    source_id: NonEmpty
    topic: NonEmpty | None
    partition: NonNegativeInt | None
    offset: NonNegativeInt | None
    parser_version: NonEmpty
    crosswalk_version: NonEmpty | None


class Merge(_Contract, frozen=True):
    """Why this source record was joined to an existing case."""

    reason: ReasonCode
    matched_case_id: uuid.UUID
    distance_m: NonNegativeFloat | None
    time_delta_s: NonNegativeFloat | None


class CaseTimes(_Contract, frozen=True):
    """UTC instants (raises ValueError on any other offset) plus the source's own texts."""

    occurred_at: UtcTime | None
    reported_at: UtcTime
    received_at: UtcTime
    occurred_text: str | None
    reported_text: str | None
    source_zone: NonEmpty | None

    def __post_init__(self) -> None:
        _require_utc("occurred_at", self.occurred_at)
        _require_utc("reported_at", self.reported_at)
        _require_utc("received_at", self.received_at)


class Category(_Contract, frozen=True):
    code: NonEmpty
    family: NonEmpty
    taxonomy_version: NonEmpty
    source_code: str | None


class Severity(_Contract, frozen=True):
    """`level` 1 = I (red, most severe) .. 4 = IV (blue)."""

    level: Annotated[int, msgspec.Meta(ge=1, le=4)]
    source_value: str | None


class Point(_Contract, frozen=True):
    """A WGS-84 point."""

    lat: Latitude
    lon: Longitude


class Polygon(_Contract, frozen=True, tag_field="type", tag="Polygon"):
    """GeoJSON Polygon, WGS-84, [lon, lat] positions."""

    coordinates: Annotated[tuple[LinearRing, ...], msgspec.Meta(min_length=1)]


class MultiPolygon(_Contract, frozen=True, tag_field="type", tag="MultiPolygon"):
    """GeoJSON MultiPolygon, WGS-84, [lon, lat] positions."""

    coordinates: Annotated[
        tuple[Annotated[tuple[LinearRing, ...], msgspec.Meta(min_length=1)], ...], msgspec.Meta(min_length=1)
    ]


Area = Polygon | MultiPolygon


class OriginalPosition(_Contract, frozen=True):
    """Coordinates exactly as the source gave them; system `none` with null lat/lon when it gave none."""

    system: CoordinateSystem
    lat: Latitude | None
    lon: Longitude | None


class Location(_Contract, frozen=True):
    point: Point | None
    area: Area | None
    original: OriginalPosition
    address: str | None
    inside_city: bool


class Division(_Contract, frozen=True):
    """Administrative placement; `tier` is the level that should handle the case first."""

    district: DistrictCode | None
    street: StreetCode | None
    community: CommunityCode | None
    grid: GridCode | None
    micro_grid: MicroGridCode | None
    tier: Tier

    def codes(self) -> list[str]:
        """The division codes of the case, most specific first."""
        return [c for c in (self.micro_grid, self.grid, self.community, self.street, self.district) if c]


class Reporter(_Contract, frozen=True):
    """Who reported. name, phone and id_number are personal data (`x-personal-data` in the schema)."""

    name: str | None
    phone: str | None
    id_number: str | None
    org: str | None

    def __repr__(self) -> str:
        # A logged event must not leak who reported: personal fields show only whether they are set.
        hidden = {f: None if getattr(self, f) is None else "***" for f in ("name", "phone", "id_number")}
        return f"Reporter(name={hidden['name']!r}, phone={hidden['phone']!r}, id_number={hidden['id_number']!r}, org={self.org!r})"


class CaseEvent(_Contract, frozen=True):
    """One fact about a case; Kafka key = `case_id`, `ce_id` header = `event_id`."""

    event_id: uuid.UUID
    event_type: EventType
    case_id: uuid.UUID
    source: SourceRef
    linked_sources: tuple[SourceRef, ...]
    merge: Merge | None
    times: CaseTimes
    category: Category
    severity: Severity
    location: Location
    division: Division
    title: Title
    description: str
    reporter: Reporter
    attributes: dict[str, Any]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(CaseEvent)


def encode_case_event(ev: CaseEvent, *, validate: bool = True) -> bytes:
    """The JSON bytes of `ev`, every field present.

    Raises msgspec.ValidationError when `ev` breaks a constraint of the contract (a Struct's constructor
    checks types only through mypy, not ranges or patterns), so what this returns always decodes.
    ``validate=False`` leaves that check out (it decodes the bytes again: about three times the cost of
    encoding): for a producer whose tests prove every event it builds decodes, on its hot path.
    """
    data = _encoder.encode(ev)
    if validate:
        _decoder.decode(data)
    return data


def decode_case_event(data: bytes | bytearray | memoryview) -> CaseEvent:
    """Decode and validate in one pass; raises msgspec.ValidationError or msgspec.DecodeError."""
    return _decoder.decode(data)
