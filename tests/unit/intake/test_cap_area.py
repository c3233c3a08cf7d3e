import math

import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from intake.domain.coords import haversine_m
from intake.domain.errors import Rejected
from intake.domain.feeds.cap.area import (
    CIRCLE_SEGMENTS,
    KM_PER_DEGREE,
    CapArea,
    CapCircle,
    CapPoint,
    CapValue,
    circle_shape,
    parse_circle,
    parse_polygon,
    union_shapes,
)

# Around Yangzhou's Hanjiang district, in CAP's lat,lon order.
SQUARE = "32.30,119.30 32.30,119.50 32.50,119.50 32.50,119.30 32.30,119.30"


def area(polygons: tuple[str, ...] = (), circles: tuple[str, ...] = ()) -> CapArea:
    return CapArea(
        area_desc="邗江区",
        polygons=tuple(parse_polygon(p, "test") for p in polygons),
        circles=tuple(parse_circle(c, "test") for c in circles),
        geocodes=(CapValue("GB/T 2260", "321003"),),
        altitude=None,
        ceiling=None,
    )


def test_polygon_text_is_read_latitude_first() -> None:
    ring = parse_polygon(SQUARE, "info[0]/area[0]/polygon[0]")
    assert ring[1] == CapPoint(lat=32.30, lon=119.50)
    assert len(ring) == 5 and ring[0] == ring[-1]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("32.3,119.3 32.3,119.5 32.5,119.5", "at least 4 points"),
        ("32.3,119.3 32.3,119.5 32.5,119.5 32.5,119.3", "not closed"),
        ("91,119.3 32.3,119.5 32.5,119.5 91,119.3", "latitude 91.0"),
        ("32.3,-180.5 32.3,119.5 32.5,119.5 32.3,-180.5", "longitude -180.5"),
        ("32.3;119.3 32.3,119.5 32.5,119.5 32.3;119.3", "'lat,lon' pair"),
        ("nan,119.3 32.3,119.5 32.5,119.5 nan,119.3", "not a decimal"),
        ("3e1,119.3 32.3,119.5 32.5,119.5 3e1,119.3", "not a decimal"),
        ("", "got 0"),
    ],
)
def test_bad_polygons_are_invalid_areas(text: str, named: str) -> None:
    with pytest.raises(Rejected) as info:
        parse_polygon(text, "info[0]/area[1]/polygon[0]")
    assert info.value.reason == "cap.invalid_area"
    assert info.value.detail.startswith("info[0]/area[1]/polygon[0]")
    assert named in info.value.detail


def test_circle_text() -> None:
    assert parse_circle(" -35.3888,147.0598  25.0 ", "c") == CapCircle(CapPoint(-35.3888, 147.0598), 25.0)


@pytest.mark.parametrize(
    "text", ["32.4,119.4", "32.4,119.4 -1", "32.4,119.4 30000", "32.4 119.4 5", "32.4,119.4 5km"]
)
def test_bad_circles_are_invalid_areas(text: str) -> None:
    with pytest.raises(Rejected) as info:
        parse_circle(text, "c")
    assert info.value.reason == "cap.invalid_area"


def test_polygon_geometry_is_in_lon_lat_order() -> None:
    shape = area(polygons=(SQUARE,)).geometry()
    assert shape is not None and shape.geom_type == "Polygon"
    assert shape.bounds == pytest.approx((119.30, 32.30, 119.50, 32.50))
    assert shape.contains(shapely.Point(119.4129, 32.3942))  # Yangzhou check point, x = longitude


def test_circle_is_a_64_gon_whose_vertices_lie_on_the_ground_circle() -> None:
    circle = CapCircle(CapPoint(32.3942, 119.4129), 10.0)
    shape = circle_shape(circle)
    coords = list(shape.exterior.coords)
    assert len(coords) == CIRCLE_SEGMENTS + 1
    for lon, lat in coords:
        assert haversine_m(32.3942, 119.4129, lat, lon) == pytest.approx(10_000, rel=0.005)
    min_lon, min_lat, max_lon, max_lat = shape.bounds
    assert max_lat - min_lat == pytest.approx(2 * 10.0 / KM_PER_DEGREE)
    assert max_lon - min_lon == pytest.approx(2 * 10.0 / KM_PER_DEGREE / math.cos(math.radians(32.3942)))


def test_zero_radius_circle_is_its_centre() -> None:
    assert circle_shape(CapCircle(CapPoint(32.4, 119.4), 0.0)).equals(shapely.Point(119.4, 32.4))


def test_polygons_and_circles_are_unioned() -> None:
    far_circle = "32.40,120.40 5"
    shape = area(polygons=(SQUARE,), circles=(far_circle, "32.40,119.40 1")).geometry()
    assert shape is not None and shape.geom_type == "MultiPolygon"
    assert len(shape.geoms) == 2  # the inner circle merged into the square


def test_geocode_only_area_has_no_geometry() -> None:
    assert area().geometry() is None
    assert union_shapes([None, None]) is None


def test_a_self_crossing_ring_is_repaired() -> None:
    bowtie = "32.3,119.3 32.5,119.5 32.5,119.3 32.3,119.5 32.3,119.3"
    shape = area(polygons=(bowtie,)).geometry()
    assert shape is not None and shape.is_valid and shape.area > 0


@given(
    st.floats(-89.0, 89.0),
    st.floats(-179.0, 179.0),
    st.floats(0.001, 500.0),
)
def test_circles_anywhere_give_valid_shapes_around_their_centre(
    lat: float, lon: float, radius: float
) -> None:
    shape = area(circles=(f"{lat:.6f},{lon:.6f} {radius:.3f}",)).geometry()
    assert shape is not None and shape.is_valid
    assert shape.contains(shapely.Point(round(lon, 6), round(lat, 6)))


def _circle_by_vertex(circle):
    """The circle's definition, one vertex at a time (the reference for the array form)."""
    import math

    from shapely.geometry import Polygon

    from intake.domain.feeds.cap.area import CIRCLE_SEGMENTS, KM_PER_DEGREE

    lat0, lon0 = circle.center
    dlat = circle.radius_km / KM_PER_DEGREE
    dlon = dlat / max(math.cos(math.radians(lat0)), 1e-6)
    ring = []
    for step in range(CIRCLE_SEGMENTS):
        angle = 2 * math.pi * step / CIRCLE_SEGMENTS
        ring.append((lon0 + dlon * math.cos(angle), min(90.0, max(-90.0, lat0 + dlat * math.sin(angle)))))
    return shapely.make_valid(Polygon(ring))


def test_circles_are_exactly_the_vertex_by_vertex_definition() -> None:
    import random

    from intake.domain.feeds.cap.area import CapCircle, CapPoint, circle_shape

    rng = random.Random(7)
    for _ in range(500):
        lat = rng.choice([rng.uniform(-90, 90), 89.999, -89.99, 90.0, 0.0, 32.39])
        radius = rng.choice([rng.uniform(0.001, 5), rng.uniform(0, 20_015), 20_015.0, 1e-9])
        circle = CapCircle(CapPoint(lat, rng.uniform(-180, 180)), radius)
        assert circle_shape(circle).wkb == _circle_by_vertex(circle).wkb, circle


def test_case_event_areas_are_the_geojson_of_the_shape() -> None:
    from shapely.geometry import MultiPolygon, Polygon, mapping

    from intake.domain.feeds.cap.area import CapCircle, CapPoint, circle_shape
    from intake.domain.normalize import _area

    def reference(shape):
        gj = mapping(shape)
        rings = gj["coordinates"] if gj["type"] == "Polygon" else None
        if rings is not None:
            return tuple(tuple((x, y) for x, y, *_ in ring) for ring in rings)
        return tuple(tuple(tuple((x, y) for x, y, *_ in ring) for ring in poly) for poly in gj["coordinates"])

    holed = Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], [[(1, 1), (2, 1), (2, 2), (1, 2)]])
    with_z = Polygon([(0, 0, 1), (1, 0, 2), (1, 1, 3)])
    bowtie = shapely.make_valid(Polygon([(0, 0), (2, 2), (2, 0), (0, 2)]))
    circles = MultiPolygon([circle_shape(CapCircle(CapPoint(32.39, 119.41 + d), 0.5)) for d in (0, 0.1)])
    for shape in (holed, with_z, bowtie, circles, circles.geoms[0]):
        assert _area(shape).coordinates == reference(shape), shape.wkt[:60]


def test_the_union_of_one_shape_is_the_shape_the_union_makes() -> None:
    # A single point or polygon is returned as it is: exactly what unary_union makes of it.
    from shapely.geometry import Point, Polygon

    from intake.domain.feeds.cap.area import CapCircle, CapPoint, circle_shape

    shapes = [
        Polygon([(0, 0), (0, 1), (1, 1), (1, 0)]),  # clockwise
        Polygon([(0, 0), (1, 0), (1, 1), (0, 1)]),
        Polygon([(0, 0), (0, 10), (10, 10), (10, 0)], [[(2, 2), (3, 2), (3, 3), (2, 3)]]),
        circle_shape(CapCircle(CapPoint(32.39, 119.41), 0.5)),
        circle_shape(CapCircle(CapPoint(89.99, 10.0), 50.0)),  # clamped at the pole
        area(polygons=(SQUARE,)).geometry(),
        Point(119.4, 32.4),
    ]
    for shape in shapes:
        assert union_shapes([shape]).wkb == shapely.unary_union([shape]).wkb, shape.wkt[:80]
    # A multipolygon goes through the union, which orders its parts.
    bowtie = parse_polygon("32.3,119.3 32.5,119.5 32.5,119.3 32.3,119.5 32.3,119.3", "t")
    repaired = shapely.make_valid(shapely.Polygon([(p.lon, p.lat) for p in bowtie]))
    assert repaired.geom_type == "MultiPolygon"
    assert union_shapes([repaired]).wkb == shapely.unary_union([repaired]).wkb
