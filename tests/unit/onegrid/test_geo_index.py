import time

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from grid_registry.domain.geography import CityGeography, generate_city
from onegrid.geo import Cell, GridIndex, Owner

HANJIANG = "321003"
CHECK_POINT = (119.4129, 32.3942)  # WGS-84 lon, lat of the reference check point


@pytest.fixture(scope="module")
def city() -> CityGeography:
    return generate_city(districts=[HANJIANG])


@pytest.fixture(scope="module")
def index(city: CityGeography) -> GridIndex:
    return GridIndex.build(city.cells)


def _leaves(city: CityGeography) -> list[Cell]:
    parents = {c.parent for c in city.cells if c.level != "special"}
    return sorted(
        (c for c in city.cells if c.level != "special" and c.code not in parents), key=lambda c: c.code
    )


def _brute_force(leaves: list[Cell], xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Smallest code among the leaves that cover each point, "" for none (bounding box, then covers)."""
    best = np.full(len(xs), "", dtype="U18")
    for leaf in reversed(leaves):  # smallest code written last
        minx, miny, maxx, maxy = leaf.geometry.bounds
        near = np.flatnonzero((xs >= minx) & (xs <= maxx) & (ys >= miny) & (ys <= maxy))
        hit = near[shapely.covers(leaf.geometry, shapely.points(xs[near], ys[near]))]
        best[hit] = leaf.code
    return best


def _points_around_hanjiang(city: CityGeography, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    minx, miny, maxx, maxy = city[HANJIANG].geometry.buffer(0.05).bounds
    rng = np.random.default_rng(seed)
    return rng.uniform(minx, maxx, count), rng.uniform(miny, maxy, count)


def test_agrees_with_brute_force_on_100k_random_points(city: CityGeography, index: GridIndex) -> None:
    xs, ys = _points_around_hanjiang(city, 100_000, seed=20230630)
    expected = _brute_force(_leaves(city), xs, ys)
    assert (index.leaf_codes(xs, ys) == expected).all()
    batch = index.lookup_many(xs, ys)
    assert (batch.found == (expected != "")).all()
    in_hanjiang = np.char.startswith(expected, HANJIANG)
    assert (batch.codes["micro_grid"][in_hanjiang] == expected[in_hanjiang]).all()
    elsewhere = ~in_hanjiang & (expected != "")
    assert (batch.codes["district"][elsewhere] == expected[elsewhere]).all()
    assert (batch.codes["street"][elsewhere] == "").all()


def test_chains_follow_the_parents(city: CityGeography, index: GridIndex) -> None:
    xs, ys = _points_around_hanjiang(city, 2_000, seed=1)
    for chain in index.lookup_many(xs, ys):
        if chain is None or chain.micro_grid is None:
            continue
        assert city[chain.micro_grid].parent == chain.grid
        assert city[chain.grid or ""].parent == chain.community
        assert city[chain.community or ""].parent == chain.street
        assert city[chain.street or ""].parent == chain.district == HANJIANG


def test_check_point_lies_in_a_hanjiang_micro_grid(index: GridIndex) -> None:
    chain = index.lookup(*CHECK_POINT)
    assert chain is not None
    assert chain.district == HANJIANG
    assert chain.micro_grid is not None and chain.micro_grid.startswith(chain.grid or "-")
    assert chain.leaf == chain.micro_grid


def test_other_districts_resolve_to_the_district_alone(index: GridIndex) -> None:
    chain = index.lookup(119.42, 33.20)  # 宝应县, generated without streets
    assert chain is not None
    assert (chain.district, chain.street, chain.leaf) == ("321023", None, "321023")


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(116.3975, 39.9087), (0.0, 0.0), (118.90, 32.40), (119.97, 33.40), (float("nan"), 32.4), (119.4, 91.0)],
)
def test_points_outside_the_city_give_none(index: GridIndex, lon: float, lat: float) -> None:
    assert index.lookup(lon, lat) is None


def test_boundary_points_resolve_to_the_smallest_covering_leaf(city: CityGeography, index: GridIndex) -> None:
    leaves = [c for c in _leaves(city) if c.code.startswith(HANJIANG)][:300]
    vertices = np.unique(shapely.get_coordinates([c.geometry for c in leaves]), axis=0)
    xs, ys = vertices[:, 0], vertices[:, 1]
    expected = _brute_force(_leaves(city), xs, ys)
    first, second = index.leaf_codes(xs, ys), index.leaf_codes(xs[::-1], ys[::-1])[::-1]
    assert (first == expected).all() and (second == expected).all()
    singles = [index.lookup(float(x), float(y)) for x, y in zip(xs[:200], ys[:200], strict=True)]
    assert [c.leaf if c else "" for c in singles] == list(expected[:200])


def test_special_grids_are_reported_beside_the_territorial_chain(
    city: CityGeography, index: GridIndex
) -> None:
    for special in city.at_level("special"):
        point = special.geometry.representative_point()
        chain = index.lookup(point.x, point.y)
        assert chain is not None
        assert chain.specials == (special.code,)
        assert chain.community == special.parent
        assert chain.micro_grid is not None


def test_covering_and_owning_tier_of_hand_made_areas(city: CityGeography, index: GridIndex) -> None:
    micro = city.at_level("micro_grid")[0]
    inside = micro.geometry.representative_point().buffer(1e-6)
    assert index.owning_tier(inside) == Owner("micro_grid", micro.code)
    assert index.covering(inside, level="micro_grid") == [micro.code]
    assert index.covering(inside) == [micro.parent]

    siblings = city.children_of(micro.parent or "")[:2]
    pair = shapely.union_all([c.geometry for c in siblings]).buffer(-1e-6)
    assert index.owning_tier(pair) == Owner("grid", micro.parent or "")
    assert index.covering(pair, level="micro_grid") == sorted(c.code for c in siblings)

    across = _patch_across_two_streets(city)
    assert index.owning_tier(across) == Owner("district", HANJIANG)
    assert len(index.covering(across, level="street")) >= 2

    assert index.owning_tier(box(116.0, 39.0, 116.1, 39.1)) is None
    assert index.covering(box(116.0, 39.0, 116.1, 39.1)) == []
    assert index.owning_tier(LineString([CHECK_POINT, (119.55, 32.40)])) is None  # Hanjiang into 广陵区


def test_owning_tier_agrees_with_brute_force_on_random_areas(city: CityGeography, index: GridIndex) -> None:
    # Every territorial unit covering the area, the deepest and then the smallest code: what
    # owning_tier answers by boxes first and exact tests in order of preference.
    depth = {"city": 0, "district": 1, "street": 2, "community": 3, "grid": 4, "micro_grid": 5}
    units = [c for c in city.cells if c.level != "special"]
    rng = np.random.default_rng(11)
    minx, miny, maxx, maxy = city[HANJIANG].geometry.buffer(0.05).bounds
    owners = set()
    for n in range(400):
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        r = float(rng.choice([1e-5, 1e-4, 1e-3, 5e-3, 2e-2, 6e-2]))
        area = Point(x, y).buffer(r) if n % 2 else box(x - r, y - r / 3, x + r / 2, y + r)
        covering = [c for c in units if c.geometry.covers(area)]
        best = min(covering, key=lambda c: (-depth[c.level], c.code), default=None)
        expected = None if best is None else Owner(best.level, best.code)
        assert index.owning_tier(area) == expected, (x, y, r)
        owners.add(None if expected is None else expected.level)
    assert owners >= {None, "district", "street", "community", "grid", "micro_grid"}


def _patch_across_two_streets(city: CityGeography) -> Polygon:
    streets = city.at_level("street")
    a, b = next(
        (a, b) for a in streets for b in streets if a.code < b.code and a.geometry.touches(b.geometry)
    )
    edge = a.geometry.intersection(b.geometry)
    middle = edge.interpolate(0.5, normalized=True)
    patch: Polygon = middle.buffer(1e-4)
    assert patch.within(city[HANJIANG].geometry)
    return patch


def test_a_replaced_or_removed_cell_is_seen_by_the_next_lookup(city: CityGeography) -> None:
    index = GridIndex.build(city.cells)
    micro = city.at_level("micro_grid")[5]
    point = micro.geometry.representative_point()
    assert (chain := index.lookup(point.x, point.y)) is not None and chain.micro_grid == micro.code

    assert index.remove(micro.code)
    chain = index.lookup(point.x, point.y)
    assert chain is not None and (chain.micro_grid, chain.grid) == (None, micro.parent)

    index.upsert(micro)
    assert (chain := index.lookup(point.x, point.y)) is not None and chain.micro_grid == micro.code
    assert not index.remove("321003999999999")


def test_malformed_cells_are_refused() -> None:
    square = box(0, 0, 1, 1)
    with pytest.raises(ValueError, match="twice"):
        GridIndex.build([Cell("1", "district", None, square), Cell("1", "district", None, square)])
    with pytest.raises(TypeError):
        GridIndex.build([Cell("1", "district", None, Point(0, 0))])
    with pytest.raises(ValueError, match="level"):
        GridIndex.build([Cell("1", "county", None, square)])  # type: ignore[arg-type]
    bow_tie = Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    with pytest.raises(ValueError, match="invalid"):
        GridIndex.build([Cell("1", "district", None, bow_tie)])


def test_edges_on_tile_lines_and_multipolygons() -> None:
    # with 4 tiles of 1 x 1 every cell edge lies on a tile line
    left = MultiPolygon([box(0, 0, 1, 1), box(0, 2, 1, 3)])
    cells = [
        Cell("1", "district", None, box(0, 0, 2, 3)),
        Cell("11", "street", "1", left),
        Cell("12", "street", "1", box(0, 0, 2, 3).difference(left)),
    ]
    index = GridIndex.build(cells, max_tiles=6)
    xs = np.array([0.5, 1.0, 1.0, 0.5, 0.5, 2.0, 2.5])
    ys = np.array([0.5, 0.5, 1.0, 1.0, 2.5, 3.0, 1.0])
    assert list(index.leaf_codes(xs, ys)) == ["11", "11", "11", "11", "11", "12", ""]


def test_prints_the_measured_lookup_rate(city: CityGeography, index: GridIndex) -> None:
    xs, ys = _points_around_hanjiang(city, 1_000_000, seed=7)
    inside = shapely.contains_xy(city[HANJIANG].geometry, xs, ys)
    xs, ys = xs[inside], ys[inside]
    index.leaf_codes(xs[:1000], ys[:1000])
    started = time.perf_counter()
    batch = index.lookup_many(xs, ys)
    elapsed = time.perf_counter() - started
    print(f"\nGridIndex.lookup_many: {len(xs) / elapsed:,.0f} points/s over {len(xs):,} points in Hanjiang")
    assert batch.found.all()
