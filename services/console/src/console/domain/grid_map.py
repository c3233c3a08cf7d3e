"""The map's geometry: registry polygons of one level, simplified for a browser, as GeoJSON.

Polygons come from the registry's `division` (district, street, community) and `grid` (grid,
micro_grid, special) records (contracts/schemas/registry-record.v1.json). Each is simplified with
Douglas-Peucker, topology preserved, and its coordinates rounded to 6 decimals (about 0.1 m), which
keeps a district's few hundred grids to a small payload. Inactive records are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shapely.geometry import mapping, shape

Json = dict[str, Any]
DIVISION_LEVELS = ("district", "street", "community")
GRID_LEVELS = ("grid", "micro_grid", "special")
LEVELS = DIVISION_LEVELS + GRID_LEVELS


def _rounded(coords: Any) -> Any:
    if isinstance(coords, (list, tuple)) and coords and isinstance(coords[0], (int, float)):
        return [round(float(c), 6) for c in coords]
    return [_rounded(c) for c in coords]


def level_features(
    divisions: Mapping[str, Json],
    grids: Mapping[str, Json],
    level: str,
    tolerance_deg: float,
    *,
    within: str = "",
) -> Json:
    """A FeatureCollection of the active units of `level` whose code starts with `within` (a division
    code: codes nest by prefix), with `bbox` [minlon, minlat, maxlon, maxlat] (None when empty)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    source = divisions if level in DIVISION_LEVELS else grids
    features: list[Json] = []
    bounds: list[float] | None = None
    for code in sorted(source):
        if not code.startswith(within):
            continue
        record = source[code]
        if record.get("level") != level or not record.get("active", True) or not record.get("area"):
            continue
        geom = shape(record["area"])
        if tolerance_deg > 0:
            geom = geom.simplify(tolerance_deg, preserve_topology=True)
        if geom.is_empty:
            continue
        b = geom.bounds
        bounds = (
            list(b)
            if bounds is None
            else [min(bounds[0], b[0]), min(bounds[1], b[1]), max(bounds[2], b[2]), max(bounds[3], b[3])]
        )
        gj = mapping(geom)
        features.append(
            {
                "type": "Feature",
                "id": code,
                "properties": {
                    "code": code,
                    "name": record.get("name", ""),
                    "level": level,
                    "parent": record.get("community_code")
                    or record.get("parent_grid_code")
                    or record.get("parent_code"),
                },
                "geometry": {"type": gj["type"], "coordinates": _rounded(gj["coordinates"])},
            }
        )
    return {"type": "FeatureCollection", "features": features, "bbox": bounds}
