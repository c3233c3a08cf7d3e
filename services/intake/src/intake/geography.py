"""The `Geography` port answered from the registry view (`grid.registry.v1`).

The service feeds the view from Kafka; the feed checker and the tests fill it from the registry's
seed (the reference city, `grid_registry.reference`), so both place records with exactly the same
code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from shapely import unary_union
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from intake.domain.placement import Station
from onegrid.geo import GridChain
from onegrid.geo.cell import Owner
from registry_client import RegistryView


class ViewGeography:
    def __init__(self, view: RegistryView) -> None:
        self.view = view
        self._city: tuple[int, BaseGeometry | None] = (-1, None)
        # Stations as the feed rules read them, per view version (every HJ 212 packet asks).
        self._stations: dict[str, Station | None] = {}
        self._stations_version = -1

    @property
    def version(self) -> str:
        return f"registry@{self.view.spatial_version}"

    def locate(self, lons: np.ndarray, lats: np.ndarray) -> Sequence[GridChain | None]:
        return list(self.view.grid_index().lookup_many(lons, lats))

    def owner(self, area: BaseGeometry) -> Owner | None:
        return self.view.grid_index().owning_tier(area)

    def chain_of(self, code: str) -> GridChain | None:
        """From the code's own structure (15/18-digit grid codes, 6/9/12-digit divisions), once the
        registry confirms the unit exists."""
        if not code.isdigit():
            return None
        if len(code) in (15, 18):
            if self.view.get("grid", code) is None:
                return None
            grid = self.view.get("grid", code[:15])
            community = grid["community_code"] if grid else None
            return GridChain(code[:6], code[:9], community, code[:15], code if len(code) == 18 else None)
        if len(code) in (6, 9, 12) and self.view.get("division", code) is not None:
            return GridChain(
                code[:6], code[:9] if len(code) >= 9 else None, code if len(code) == 12 else None
            )
        return None

    def station(self, mn: str) -> Station | None:
        if self._stations_version != self.view.version:
            self._stations.clear()
            self._stations_version = self.view.version
        try:
            return self._stations[mn]
        except KeyError:
            found = self._stations[mn] = self._station(mn)
            return found

    def _station(self, mn: str) -> Station | None:
        r = self.view.station(mn)
        if r is None:
            return None
        return Station(
            mn=mn,
            name=r.get("name", mn),
            lat=r["point"]["lat"],
            lon=r["point"]["lon"],
            station_type=r.get("station_type", ""),
            division_code=r.get("division_code"),
            grid_code=r.get("grid_code"),
        )

    def division_area(self, code: str) -> BaseGeometry | None:
        r = self.view.get("division", code)
        if r is None or not r.get("area"):
            return None
        return shape(r["area"])

    def city_area(self) -> BaseGeometry | None:
        version, city = self._city
        if version != self.view.spatial_version:
            districts = [
                shape(r["area"])
                for r in self.view.all("division").values()
                if r.get("level") == "district" and r.get("area") and r.get("active", True)
            ]
            city = unary_union(districts) if districts else None
            self._city = (self.view.spatial_version, city)
        return city
