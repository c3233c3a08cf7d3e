"""`Report`: what any legacy record says, in one network-neutral shape, before normalization.

Every adapter turns its parsed record into Reports (an HJ 212 packet may give several, a CAP alert
one); `normalize` turns a Report into a case event. The adapters keep what the source said (codes,
local time texts, coordinates in the source's system); all conversion happens later, in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import msgspec
from shapely.geometry.base import BaseGeometry

from intake.domain.coords import CoordSystem
from intake.domain.localtime import LocalTime
from intake.domain.severity import Severity


class Intent(StrEnum):
    """What the source record means for the case it belongs to."""

    REPORT = "report"  # a new incident (or the same incident seen by another network)
    AMEND = "amend"  # more about an earlier record of the same source: CAP Update, episode peak, follow-up
    CANCEL = "cancel"  # the source withdraws it: CAP Cancel


class SourcePosition(msgspec.Struct, frozen=True):
    """A point exactly as the source gave it."""

    lat: float
    lon: float
    system: CoordSystem


class ReporterInfo(msgspec.Struct, frozen=True):
    """Personal data: masked outside the roles that need it."""

    name: str | None = None
    phone: str | None = None
    id_number: str | None = None
    org: str | None = None

    def __repr__(self) -> str:
        # As CaseEvent's Reporter: a log line never carries the personal fields' values.
        hidden = {f: None if getattr(self, f) is None else "***" for f in ("name", "phone", "id_number")}
        return f"ReporterInfo(name={hidden['name']!r}, phone={hidden['phone']!r}, id_number={hidden['id_number']!r}, org={self.org!r})"


class Report(msgspec.Struct, frozen=True):
    network: str  # env | emergency | safety | party | open311 | patrol
    source_id: str  # the source's own id; with network, the idempotency key
    intent: Intent
    source_code: str  # the code the crosswalk maps (network-specific form)
    title: str
    description: str
    reported: LocalTime
    parser_version: str
    severity: Severity
    severity_source: str | None = None
    occurred: LocalTime | None = None
    refers_to: tuple[str, ...] = ()  # source ids of earlier records this one amends or cancels
    hints: Mapping[str, str] = msgspec.field(default_factory=dict)  # crosswalk hints (e.g. CAP event text)
    position: SourcePosition | None = None
    area: BaseGeometry | None = None  # WGS-84, lon/lat axis order
    address: str | None = None
    grid_code: str | None = None  # the source's own placement, checked against the registry
    division_code: str | None = None  # e.g. a CAP geocode or a station's registered street
    reporter: ReporterInfo = msgspec.field(default_factory=ReporterInfo)
    # True for feeds from outside the city's own systems (CAP): a record that names no place of the
    # city is outside it. The city's own feeds may be unlocated; the command centre then places them.
    must_locate: bool = False
    # Set when the record is about no real incident (a CAP Test, Exercise, Ack...): it is still placed
    # and reported truthfully, and accounted for as "no case: <this>", but never becomes a case.
    no_case: str | None = None
    attributes: Mapping[str, Any] = msgspec.field(default_factory=dict)

    @property
    def source_key(self) -> str:
        return f"{self.network}:{self.source_id}"
