"""Where a case is and which tier handles it first.

The `Geography` port answers from the registry (in the service: the view rebuilt from
`grid.registry.v1`; in the feed checker and tests: the generated city). Placement is a separate
decision from parsing: a valid record from outside the city parses, and is then refused here with
its own reason (`place.outside_city`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec
import numpy as np
from shapely.geometry.base import BaseGeometry

from intake.domain.severity import Severity
from onegrid.geo.cell import GridChain, Owner

TIERS = ("grid", "community", "street", "district", "city")
_LEVEL_TIER = {
    "micro_grid": "grid",
    "grid": "grid",
    "special": "grid",
    "community": "community",
    "street": "street",
    "district": "district",
}
# Severity sets a floor on the tier: a major incident is never left to a grid worker.
_SEVERITY_FLOOR = {Severity.I: "city", Severity.II: "district", Severity.III: "street", Severity.IV: "grid"}


@dataclass(frozen=True, slots=True)
class Station:
    """A registered HJ 212 monitoring station."""

    mn: str
    name: str
    lat: float
    lon: float
    station_type: str
    division_code: str | None
    grid_code: str | None


class Geography(Protocol):
    """What intake needs to know about the city's geography."""

    @property
    def version(self) -> str:
        """Changes whenever the registry changes: recorded with every placement."""
        ...

    def locate(self, lons: np.ndarray, lats: np.ndarray) -> Sequence[GridChain | None]: ...

    def owner(self, area: BaseGeometry) -> Owner | None: ...

    def chain_of(self, code: str) -> GridChain | None:
        """The chain of a registered grid or division code (a source's own placement)."""
        ...

    def station(self, mn: str) -> Station | None: ...

    def division_area(self, code: str) -> BaseGeometry | None:
        """The area of a division (GB/T 2260 or statistical code), e.g. for a CAP geocode."""
        ...

    def city_area(self) -> BaseGeometry | None:
        """The whole city (the union of its districts); None before the registry is known."""
        ...


class Placement(msgspec.Struct, frozen=True):
    district: str | None
    street: str | None
    community: str | None
    grid: str | None
    micro_grid: str | None
    tier: str
    inside_city: bool
    located: bool  # False: the source gave no usable place; the city command centre triages it


UNLOCATED = Placement(None, None, None, None, None, "city", True, False)
OUTSIDE = Placement(None, None, None, None, None, "city", False, True)


def raise_tier(tier: str, severity: Severity) -> str:
    floor = _SEVERITY_FLOOR[severity]
    return tier if TIERS.index(tier) >= TIERS.index(floor) else floor


def from_chain(chain: GridChain | None, severity: Severity) -> Placement:
    if chain is None:
        return OUTSIDE
    deepest = (
        "micro_grid"
        if chain.micro_grid
        else "grid"
        if chain.grid
        else "community"
        if chain.community
        else "street"
        if chain.street
        else "district"
    )
    return Placement(
        chain.district,
        chain.street,
        chain.community,
        chain.grid,
        chain.micro_grid,
        raise_tier(_LEVEL_TIER[deepest], severity),
        True,
        True,
    )


def from_owner(
    owner: Owner | None, geography: Geography, area: BaseGeometry, severity: Severity
) -> Placement:
    """An area belongs to the lowest unit containing all of it; one crossing districts, to the city."""
    if owner is None:
        # Crossing districts, larger than the city, or outside: inside when it overlaps the city. Its
        # representative point is no test: a province's lies in another city.
        city = geography.city_area()
        if city is None or not area.intersects(city):
            return OUTSIDE
        return Placement(None, None, None, None, None, "city", True, True)
    chain = geography.chain_of(owner.code)
    if chain is None:
        return Placement(
            None, None, None, None, None, raise_tier(_LEVEL_TIER[owner.level], severity), True, True
        )
    base = from_chain(chain, severity)
    return Placement(
        base.district,
        base.street,
        base.community,
        base.grid,
        base.micro_grid,
        raise_tier(_LEVEL_TIER[owner.level], severity),
        True,
        True,
    )
