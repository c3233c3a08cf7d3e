import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake.domain.coords import (
    CoordSystem,
    from_wgs84,
    from_wgs84_many,
    haversine_m,
    in_china,
    to_wgs84,
    to_wgs84_many,
    valid_mask,
)
from intake.domain.errors import Rejected

# DOMAIN.md's check point in Yangzhou, published to 7 decimals (about 1 cm).
WGS = (32.3942, 119.4129)
GCJ = (32.3923204, 119.4183802)
BD = (32.3985231, 119.4248171)
PUBLISHED_PRECISION_M = 0.02

china_lat = st.floats(min_value=0.8293, max_value=55.8271)
china_lon = st.floats(min_value=72.004, max_value=137.8347)
OFFSET_SYSTEMS = [CoordSystem.GCJ02, CoordSystem.BD09]


@pytest.mark.parametrize(("system", "expected"), [(CoordSystem.GCJ02, GCJ), (CoordSystem.BD09, BD)])
def test_forward_transform_matches_the_yangzhou_check_point(system, expected):
    assert haversine_m(*from_wgs84(*WGS, system), *expected) < PUBLISHED_PRECISION_M


@pytest.mark.parametrize(("system", "published"), [(CoordSystem.GCJ02, GCJ), (CoordSystem.BD09, BD)])
def test_inverse_transform_recovers_the_yangzhou_check_point(system, published):
    assert haversine_m(*to_wgs84(*published, system), *WGS) < PUBLISHED_PRECISION_M


def test_check_point_offsets_are_hundreds_of_metres_so_the_transform_is_not_identity():
    assert 500 < haversine_m(*WGS, *GCJ) < 600
    assert 1000 < haversine_m(*WGS, *BD) < 1300


@pytest.mark.parametrize("system", [CoordSystem.WGS84, CoordSystem.CGCS2000])
def test_wgs84_and_cgcs2000_are_identity(system):
    assert to_wgs84(*GCJ, system) == GCJ
    assert from_wgs84(*WGS, system) == WGS


@pytest.mark.parametrize("system", OFFSET_SYSTEMS)
@given(lat=china_lat, lon=china_lon)
def test_round_trip_inside_china_is_within_a_tenth_of_a_metre(system, lat, lon):
    back = to_wgs84(*from_wgs84(lat, lon, system), system)
    assert haversine_m(lat, lon, *back) < 0.1


@pytest.mark.parametrize("system", OFFSET_SYSTEMS)
@given(lat=china_lat, lon=china_lon)
def test_offset_systems_move_points_inside_china(system, lat, lon):
    assert haversine_m(lat, lon, *from_wgs84(lat, lon, system)) > 1.0


# Points at least 0.1 degree (over 10 km) from China's box: the offset is below 1.5 km everywhere.
outside_china = st.one_of(
    st.tuples(st.floats(-90, 0.7), st.floats(-180, 180)),
    st.tuples(st.floats(55.93, 90), st.floats(-180, 180)),
    st.tuples(st.floats(-90, 90), st.floats(-180, 71.9)),
    st.tuples(st.floats(-90, 90), st.floats(137.94, 180)),
)


@pytest.mark.parametrize("system", OFFSET_SYSTEMS)
@given(point=outside_china)
def test_outside_china_every_system_is_wgs84(system, point):
    assert not in_china(*point)
    assert from_wgs84(*point, system) == point
    assert to_wgs84(*point, system) == point


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(math.nan, 119.0), (32.0, math.nan), (math.inf, 119.0), (32.0, -math.inf), (90.01, 0.0), (0.0, 180.5)],
)
@pytest.mark.parametrize("system", list(CoordSystem))
def test_invalid_coordinates_are_rejected(lat, lon, system):
    with pytest.raises(Rejected) as info:
        to_wgs84(lat, lon, system)
    assert info.value.reason == "coords.invalid"
    with pytest.raises(Rejected):
        from_wgs84(lat, lon, system)


@pytest.mark.parametrize("system", list(CoordSystem))
def test_batch_matches_one_by_one(system):
    rng = np.random.default_rng(20260301)
    lats = np.concatenate([rng.uniform(18, 54, 200), [WGS[0], -33.9, 51.5]])
    lons = np.concatenate([rng.uniform(73, 135, 200), [WGS[1], 151.2, -0.1]])
    many_lat, many_lon = to_wgs84_many(lats, lons, system)
    fwd_lat, fwd_lon = from_wgs84_many(lats, lons, system)
    for i in range(lats.size):
        assert (many_lat[i], many_lon[i]) == pytest.approx(to_wgs84(lats[i], lons[i], system), abs=1e-9)
        assert (fwd_lat[i], fwd_lon[i]) == pytest.approx(from_wgs84(lats[i], lons[i], system), abs=1e-12)


def test_batch_names_the_first_invalid_point_and_leaves_input_untouched():
    lats = np.array([32.0, 32.1, np.nan, 95.0])
    lons = np.array([119.0, 119.1, 119.2, 119.3])
    with pytest.raises(Rejected) as info:
        to_wgs84_many(lats, lons, CoordSystem.GCJ02)
    assert info.value.reason == "coords.invalid"
    assert "point 2 of 4" in info.value.detail
    assert valid_mask(lats, lons).tolist() == [True, True, False, False]
    out_lat, _ = to_wgs84_many(lats[:2], lons[:2], CoordSystem.GCJ02)
    assert out_lat is not lats and lats[0] == 32.0


def test_haversine_known_distance_one_degree_of_meridian():
    assert haversine_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(111_195, rel=1e-4)
    assert haversine_m(*WGS, *WGS) == 0.0
