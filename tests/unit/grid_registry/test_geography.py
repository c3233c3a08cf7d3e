from collections import defaultdict

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, Polygon

from grid_registry.domain.codes import parse_grid_code
from grid_registry.domain.geography import CityGeography, generate_city
from grid_registry.domain.gridgen import partition
from grid_registry.domain.outlines import city_outline
from onegrid.geo import Area, Cell

HANJIANG = "321003"
TOLERANCE = 1e-9  # relative area: what floating-point clipping may leave


@pytest.fixture(scope="module")
def hanjiang() -> CityGeography:
    return generate_city(districts=[HANJIANG])


def _families(city: CityGeography) -> dict[str, list[Cell]]:
    families: dict[str, list[Cell]] = defaultdict(list)
    for cell in city.cells:
        if cell.parent is not None and cell.level != "special":
            families[cell.parent].append(cell)
    return families


def _assert_partition(parent: Area, children: list[Area]) -> None:
    scale = parent.area
    assert abs(sum(c.area for c in children) - scale) <= TOLERANCE * scale
    tree = shapely.STRtree(children)
    left, right = tree.query(children, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(
        shapely.intersection(np.take(children, left[pairs]), np.take(children, right[pairs]))
    )
    assert overlap.max(initial=0.0) <= TOLERANCE * scale
    assert shapely.union_all(children).symmetric_difference(parent).area <= TOLERANCE * scale
    for child in children:
        assert child.difference(parent).area <= TOLERANCE * child.area


def test_same_seed_gives_the_same_wkt(hanjiang: CityGeography) -> None:
    assert generate_city(districts=[HANJIANG]).wkt_digest() == hanjiang.wkt_digest()


def test_another_seed_gives_other_grids(hanjiang: CityGeography) -> None:
    other = generate_city(seed=7, districts=[HANJIANG])
    assert other.wkt_digest() != hanjiang.wkt_digest()
    assert {c.code for c in other.at_level("community")} == {c.code for c in hanjiang.at_level("community")}


def test_a_district_does_not_depend_on_which_others_are_generated(hanjiang: CityGeography) -> None:
    both = generate_city(districts=[HANJIANG, "321002"])
    assert all(both[c.code].wkt == c.wkt for c in hanjiang.cells if c.code.startswith(HANJIANG))
    assert any(c.level == "micro_grid" and c.code.startswith("321002") for c in both.cells)


def test_siblings_partition_their_parent_at_every_level(hanjiang: CityGeography) -> None:
    families = _families(hanjiang)
    assert len(families) == 1 + 21 + 177 + len(hanjiang.at_level("grid"))
    for parent, children in families.items():
        _assert_partition(hanjiang[parent].geometry, [c.geometry for c in children])


def test_districts_partition_the_city_outline(hanjiang: CityGeography) -> None:
    _assert_partition(city_outline(), [c.geometry for c in hanjiang.at_level("district")])


def test_check_point_lies_in_hanjiang(hanjiang: CityGeography) -> None:
    point = Point(119.4129, 32.3942)
    assert [c.code for c in hanjiang.at_level("district") if c.geometry.covers(point)] == [HANJIANG]


def test_grid_counts_and_codes_follow_the_pattern(hanjiang: CityGeography) -> None:
    families = _families(hanjiang)
    for community in hanjiang.at_level("community"):
        grids = families[community.code]
        assert 3 <= len(grids) <= 8
        for sequence, grid in enumerate(grids, start=1):
            parsed = parse_grid_code(grid.code)
            assert (parsed.community_code, int(parsed.sequence), parsed.micro) == (
                community.code,
                sequence,
                None,
            )
            micros = families[grid.code]
            assert 2 <= len(micros) <= 4
            assert [parse_grid_code(m.code).grid_code for m in micros] == [grid.code] * len(micros)


def test_special_grids_lie_inside_one_community_across_its_grids(hanjiang: CityGeography) -> None:
    specials = hanjiang.at_level("special")
    kinds = ("学校专属网格", "化工厂专属网格", "医院专属网格")
    assert sorted(kind for c in specials for kind in kinds if c.name.endswith(kind)) == sorted(kinds)
    for special in specials:
        assert parse_grid_code(special.code).is_special
        host = hanjiang[special.parent or ""]
        assert host.level == "community"
        assert special.geometry.difference(host.geometry).area <= TOLERANCE * special.geometry.area
        assert special.geometry.area > 0
        assert any(g.geometry.intersects(special.geometry) for g in hanjiang.children_of(host.code))


def test_geojson_has_one_feature_per_cell(hanjiang: CityGeography) -> None:
    collection = hanjiang.to_geojson()
    assert len(collection["features"]) == len(hanjiang.cells)
    first = collection["features"][0]
    assert first["properties"]["level"] == "district"
    assert first["geometry"]["type"] in ("Polygon", "MultiPolygon")


def test_unknown_district_is_refused() -> None:
    with pytest.raises(KeyError, match="321099"):
        generate_city(districts=["321099"])


L_SHAPE = Polygon([(0, 0), (4, 0), (4, 1), (1, 1), (1, 4), (0, 4)])


@settings(max_examples=30, deadline=None)
@given(count=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_partition_of_a_non_convex_area_is_exact(count: int, seed: int) -> None:
    pieces = partition(L_SHAPE, count, np.random.default_rng(seed))
    assert len(pieces) == count
    _assert_partition(L_SHAPE, pieces)
