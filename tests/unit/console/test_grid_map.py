"""The map's polygons: one level, active only, simplified, rounded, with a bounding box."""

from __future__ import annotations

import pytest

from console.domain.grid_map import level_features


def square(x: float, y: float, d: float = 0.01, points: int = 50) -> dict[str, object]:
    # Many collinear points along each side: simplification must drop them.
    side = [(x + d * i / points, y) for i in range(points)]
    ring = [*side, (x + d, y), (x + d, y + d), (x, y + d), (x, y)]
    return {"type": "Polygon", "coordinates": [ring]}


GRIDS = {
    "321003001001001": {
        "level": "grid",
        "name": "第1网格",
        "area": square(119.3, 32.5),
        "community_code": "321003001001",
    },
    "321003001001002": {"level": "grid", "name": "第2网格", "area": square(119.31, 32.5), "active": False},
    "321003001001001001": {"level": "micro_grid", "name": "微1", "area": square(119.3, 32.5, 0.005)},
    "321012001001001": {"level": "grid", "name": "别区", "area": square(119.5, 32.6)},
}
DIVISIONS = {
    "321003001": {
        "level": "street",
        "name": "某街道",
        "area": square(119.2, 32.4, 0.2),
        "parent_code": "321003",
    }
}


def test_active_units_of_the_level_simplified_with_bbox() -> None:
    fc = level_features(DIVISIONS, GRIDS, "grid", 1e-4)
    assert [f["id"] for f in fc["features"]] == ["321003001001001", "321012001001001"]
    first = fc["features"][0]
    assert first["properties"] == {
        "code": "321003001001001",
        "name": "第1网格",
        "level": "grid",
        "parent": "321003001001",
    }
    ring = first["geometry"]["coordinates"][0]
    assert len(ring) == 5  # the 50 collinear points are gone
    assert fc["bbox"] == pytest.approx([119.3, 32.5, 119.51, 32.61])


def test_within_a_division_and_division_levels() -> None:
    fc = level_features(DIVISIONS, GRIDS, "grid", 0, within="321003")
    assert [f["id"] for f in fc["features"]] == ["321003001001001"]
    assert len(fc["features"][0]["geometry"]["coordinates"][0]) == 54  # tolerance 0: untouched
    streets = level_features(DIVISIONS, GRIDS, "street", 1e-4)
    assert [f["properties"]["parent"] for f in streets["features"]] == ["321003"]
    assert level_features(DIVISIONS, GRIDS, "community", 1e-4) == {
        "type": "FeatureCollection",
        "features": [],
        "bbox": None,
    }


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="level must be one of"):
        level_features(DIVISIONS, GRIDS, "planet", 1e-4)


def test_the_district_level_draws_the_real_outlines_of_the_seeded_city() -> None:
    # Before: 7 synthetic shapes (Voronoi cells around anchor points) with no district level on the
    # page. Now: the six real outlines of the vendored extract, 邗江区 around the check point.
    from shapely.geometry import Point, shape

    from grid_registry.domain.outlines import district_outlines
    from grid_registry.reference import reference_view

    view = reference_view()
    fc = level_features(dict(view.all("division")), dict(view.all("grid")), "district", 1e-4)
    drawn = {f["id"]: shape(f["geometry"]) for f in fc["features"]}
    assert sorted(drawn) == sorted(district_outlines()) == [
        "321002", "321003", "321012", "321023", "321081", "321084"
    ]  # fmt: skip
    assert [code for code, area in drawn.items() if area.covers(Point(119.4129, 32.3942))] == ["321003"]
    for code, real in district_outlines().items():
        assert drawn[code].symmetric_difference(real).area < 0.01 * real.area  # simplified, same shape
