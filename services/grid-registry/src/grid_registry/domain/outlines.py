"""Approximate outlines of Yangzhou and its districts (WGS-84 lon/lat), hand-drawn from public maps.

Only 邗江区 has a drawn outline (its real extent is roughly lon 119.20-119.50, lat 32.30-32.55, around the
western part of the central city); the other districts are unions of Voronoi cells around anchor points
placed where they lie, clipped to the city outline minus Hanjiang. Good enough to route cases to the
right district; not a survey.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import Polygon

from grid_registry.domain.gridgen import as_area
from onegrid.geo import Area

HANJIANG = "321003"

CITY_OUTLINE = Polygon(
    [
        (119.02, 32.25), (119.20, 32.22), (119.40, 32.24), (119.60, 32.21), (119.85, 32.25),
        (119.96, 32.45), (119.90, 32.70), (119.76, 32.86), (119.70, 33.10), (119.62, 33.40),
        (119.36, 33.43), (119.15, 33.26), (119.20, 33.00), (119.24, 32.76), (119.14, 32.58),
        (119.00, 32.45),
    ]
)  # fmt: skip

HANJIANG_OUTLINE = Polygon(
    [
        (119.20, 32.32), (119.30, 32.30), (119.38, 32.32), (119.445, 32.36), (119.435, 32.42),
        (119.47, 32.46), (119.50, 32.52), (119.42, 32.55), (119.30, 32.54), (119.22, 32.48),
        (119.20, 32.40),
    ]
)  # fmt: skip

# district code -> anchor points (lon, lat) near which the district lies
DISTRICT_ANCHORS: dict[str, tuple[tuple[float, float], ...]] = {
    "321002": ((119.50, 32.38), (119.48, 32.43), (119.53, 32.30)),  # 广陵区
    "321012": ((119.70, 32.40), (119.80, 32.55), (119.68, 32.28), (119.75, 32.68)),  # 江都区
    "321023": ((119.40, 33.22), (119.55, 33.12), (119.40, 33.36)),  # 宝应县
    "321071": ((119.40, 32.27), (119.33, 32.26)),  # 扬州经济技术开发区
    "321081": ((119.10, 32.35), (119.15, 32.50), (119.05, 32.30), (119.22, 32.27)),  # 仪征市
    "321084": ((119.45, 32.78), (119.50, 32.92), (119.33, 32.64), (119.65, 32.85)),  # 高邮市
}


def district_outlines() -> dict[str, Area]:
    """Outline of every district; together they cover the city outline without overlap."""
    city = CITY_OUTLINE
    hanjiang: Area = HANJIANG_OUTLINE
    rest = shapely.difference(city, hanjiang)
    codes = [code for code, anchors in DISTRICT_ANCHORS.items() for _ in anchors]
    points = shapely.multipoints(np.array([p for anchors in DISTRICT_ANCHORS.values() for p in anchors]))
    cells = shapely.get_parts(
        shapely.voronoi_polygons(points, extend_to=city.envelope.buffer(1), ordered=True)
    )
    outlines: dict[str, Area] = {HANJIANG: hanjiang}
    for code in DISTRICT_ANCHORS:
        mine = [cell for cell, owner in zip(cells, codes, strict=True) if owner == code]
        merged = shapely.union_all(mine)
        outlines[code] = as_area(shapely.intersection(merged, rest))
    return outlines
