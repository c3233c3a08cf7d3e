"""The units of the grid hierarchy as the spatial index sees them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from shapely.geometry import MultiPolygon, Polygon

Level = Literal["district", "street", "community", "grid", "micro_grid", "special"]
# Territorial levels from the top down; "special" grids lie across them and are looked up on the side.
TERRITORIAL_LEVELS: tuple[Level, ...] = ("district", "street", "community", "grid", "micro_grid")

Area: TypeAlias = Polygon | MultiPolygon


@dataclass(frozen=True, slots=True)
class Cell:
    """One unit: its code, level, parent code (None for a district) and WGS-84 lon/lat geometry."""

    code: str
    level: Level
    parent: str | None
    geometry: Area
    name: str = ""

    @property
    def wkt(self) -> str:
        return str(self.geometry.wkt)


@dataclass(frozen=True, slots=True)
class GridChain:
    """Where a point lies: one code per territorial level (None below the deepest unit there),
    plus every special-purpose grid containing the point, in code order."""

    district: str | None = None
    street: str | None = None
    community: str | None = None
    grid: str | None = None
    micro_grid: str | None = None
    specials: tuple[str, ...] = ()

    @property
    def leaf(self) -> str | None:
        """The deepest territorial unit: the one a case at this point is assigned to first."""
        return self.micro_grid or self.grid or self.community or self.street or self.district


@dataclass(frozen=True, slots=True)
class Owner:
    """The lowest territorial unit that contains a whole area."""

    level: Level
    code: str
