"""The simulated city: its monitoring stations and the places where things happen, from the
registry's seed (`grid_registry.domain.seed.seed_records`), so every record lands inside 邗江区.

Places are uniform random points inside the district's communities, kept only when a 1 km disc
around them stays inside the district: a CAP circle drawn there never crosses the border, and a
converted GCJ-02/BD-09 coordinate never falls out by its last metre.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape

from grid_registry.domain.gridgen import points_inside
from grid_registry.domain.seed import seed_records
from grid_registry.domain.seed_catalog import HANJIANG

# About 1 km in degrees at Yangzhou's latitude (the disc test needs no more precision).
_MARGIN_DEG = 0.0105


@dataclass(frozen=True, slots=True)
class Station:
    mn: str
    st: str  # HJ 212 system code: 22 air quality, 32 water pollution source
    name: str
    lat: float
    lon: float

    @property
    def air(self) -> bool:
        return self.st == "22"


@dataclass(frozen=True, slots=True)
class Place:
    lat: float  # WGS-84
    lon: float
    address: str  # 扬州市邗江区<street><community>

    @property
    def wgs(self) -> tuple[float, float]:
        return (self.lat, self.lon)


@dataclass(frozen=True)
class City:
    stations: tuple[Station, ...]
    places: tuple[Place, ...]
    departments: tuple[str, ...]

    def place(self, rng: np.random.Generator) -> Place:
        return self.places[int(rng.integers(len(self.places)))]


@lru_cache(maxsize=4)
def reference_city(places: int = 4096, seed: int = 20261130) -> City:
    """The city of the registry's default seed; `places` points drawn with `seed` (cached)."""
    return city_from_records(seed_records(), places=places, rng=np.random.default_rng(seed))


def city_from_records(records: list[dict[str, Any]], *, places: int, rng: np.random.Generator) -> City:
    divisions = {r["code"]: r for r in records if r["kind"] == "division"}
    district = shape(divisions[HANJIANG]["area"])
    core = district.buffer(-_MARGIN_DEG)
    shapely.prepare(core)
    communities = [
        d
        for d in divisions.values()
        if d.get("level") == "community" and d["code"].startswith(HANJIANG) and d.get("area")
    ]
    found: list[Place] = []
    while len(found) < places:
        community = communities[int(rng.integers(len(communities)))]
        lon, lat = points_inside(shape(community["area"]), 1, rng)[0]
        if not shapely.contains_xy(core, lon, lat):
            continue
        street = divisions.get(community["code"][:9], {}).get("name", "")
        found.append(
            Place(round(float(lat), 6), round(float(lon), 6), f"扬州市邗江区{street}{community['name']}")
        )
    stations = tuple(
        Station(r["code"], r["system_code"], r["name"], r["point"]["lat"], r["point"]["lon"])
        for r in records
        if r["kind"] == "station" and r.get("active", True)
    )
    departments = tuple(r["code"] for r in records if r["kind"] == "department")
    return City(stations=stations, places=tuple(found), departments=departments)
