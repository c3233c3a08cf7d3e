"""The city's generated geography: division outlines and grid polygons, reproducible from one seed.

Hierarchy: district -> street (街道/乡镇) -> community (社区/村) -> comprehensive grid (综合网格, 3-8 per
community) -> micro-grid (微网格, 2-4 per grid); siblings partition their parent. Special-purpose grids
(专属网格: a school, a chemical plant, a hospital) are small areas inside one community that overlap its
comprehensive grids by design.

Randomness: each unit's children are drawn from ``numpy.random.default_rng([seed, int(unit_code)])``, so a
subtree depends only on the seed and its own code: generating one district gives exactly the cells that
generating the whole city gives for it. Same seed, numpy and GEOS versions -> the same WKT, bit for bit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping

from grid_registry.domain.codes import FIRST_SPECIAL_SEQUENCE, make_grid_code
from grid_registry.domain.divisions import CITY_CODE, DivisionTree, load_divisions
from grid_registry.domain.gridgen import partition, site
from grid_registry.domain.outlines import district_outlines
from onegrid.geo import Area, Cell, Level

DEFAULT_SEED = 321003
GRIDS_PER_COMMUNITY = (3, 8)
MICRO_GRIDS_PER_GRID = (2, 4)


@dataclass(frozen=True, slots=True)
class SpecialSite:
    """A special-purpose grid placed in the first community (by code) of ``street``."""

    street: str
    kind: str
    name: str
    size: tuple[float, float]  # width, height in degrees


SPECIAL_SITES: tuple[SpecialSite, ...] = (
    SpecialSite("321003009", "school", "学校专属网格", (0.003, 0.002)),
    SpecialSite("321003103", "chemical_plant", "化工厂专属网格", (0.006, 0.004)),
    SpecialSite("321003006", "hospital", "医院专属网格", (0.002, 0.0015)),
)


@dataclass(frozen=True)
class CityGeography:
    """Divisions of the city and the generated cells, parents before children."""

    seed: int
    divisions: DivisionTree
    cells: tuple[Cell, ...]
    _by_code: dict[str, Cell] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_code", {c.code: c for c in self.cells})

    def __getitem__(self, code: str) -> Cell:
        return self._by_code[code]

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def at_level(self, level: Level) -> list[Cell]:
        return [c for c in self.cells if c.level == level]

    def children_of(self, code: str) -> list[Cell]:
        return [c for c in self.cells if c.parent == code]

    def wkt_digest(self) -> str:
        """SHA-256 over every cell's code and WKT: equal digests mean identical geography."""
        digest = hashlib.sha256()
        for cell in self.cells:
            digest.update(f"{cell.code}\t{cell.level}\t{cell.parent}\t{cell.wkt}\n".encode())
        return digest.hexdigest()

    def to_geojson(self) -> dict[str, Any]:
        """A GeoJSON FeatureCollection (RFC 7946, lon/lat) with code, level, parent and name properties."""
        return {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "id": c.code,
                    "geometry": mapping(c.geometry),
                    "properties": {"code": c.code, "level": c.level, "parent": c.parent, "name": c.name},
                }
                for c in self.cells
            ],
        }


def generate_city(seed: int = DEFAULT_SEED, districts: Collection[str] | None = None) -> CityGeography:
    """Every district's real outline, and down to micro-grids for ``districts`` (None: all of those
    with an outline).

    Deterministic in ``seed``; a district's cells do not depend on which other districts are generated.
    Raises KeyError for a code in ``districts`` that is not a district of the city.
    """
    tree = load_divisions()
    outlines = district_outlines()
    wanted = set(outlines) if districts is None else set(districts)
    unknown = wanted - set(outlines)
    if unknown:
        raise KeyError(f"not districts of {CITY_CODE}: {sorted(unknown)}")
    cells: list[Cell] = []
    for district in tree.children_of(CITY_CODE):
        if district.code not in outlines:
            continue  # a functional zone without an outline of its own (321071): no area
        area = _canonical(outlines[district.code])
        cells.append(Cell(district.code, "district", None, area, district.name))
        if district.code in wanted:
            cells += _divisions_below(tree, district.code, area, seed)
    by_code = {c.code: c for c in cells}
    cells += _special_grids(tree, by_code, seed)
    return CityGeography(seed=seed, divisions=tree, cells=tuple(cells))


def _divisions_below(tree: DivisionTree, code: str, area: Area, seed: int) -> Iterator[Cell]:
    children = tree.children_of(code)
    if not children:
        return
    pieces = partition(area, len(children), _rng(seed, code))
    for child, piece in zip(children, pieces, strict=True):
        piece = _canonical(piece)
        level: Level = "street" if child.level == "street" else "community"
        yield Cell(child.code, level, code, piece, child.name)
        if child.level == "community":
            yield from _grids(child.code, child.name, piece, seed)
        else:
            yield from _divisions_below(tree, child.code, piece, seed)


def _grids(community: str, name: str, area: Area, seed: int) -> Iterator[Cell]:
    rng = _rng(seed, community)
    count = int(rng.integers(GRIDS_PER_COMMUNITY[0], GRIDS_PER_COMMUNITY[1] + 1))
    for sequence, piece in enumerate(partition(area, count, rng), start=1):
        grid = make_grid_code(community, sequence)
        piece = _canonical(piece)
        yield Cell(grid, "grid", community, piece, f"{name}第{sequence}网格")
        micro_rng = _rng(seed, grid)
        micro_count = int(micro_rng.integers(MICRO_GRIDS_PER_GRID[0], MICRO_GRIDS_PER_GRID[1] + 1))
        for micro, micro_piece in enumerate(partition(piece, micro_count, micro_rng), start=1):
            code = make_grid_code(community, sequence, micro)
            yield Cell(
                code, "micro_grid", grid, _canonical(micro_piece), f"{name}第{sequence}网格第{micro}微网格"
            )


def _special_grids(tree: DivisionTree, cells: dict[str, Cell], seed: int) -> Iterator[Cell]:
    placed: dict[str, int] = {}
    for special in SPECIAL_SITES:
        communities = [c for c in tree.children_of(special.street) if c.code in cells]
        if not communities:
            continue  # its district was not generated down to communities
        host = cells[communities[0].code]
        sequence = FIRST_SPECIAL_SEQUENCE + placed.get(host.code, 0)
        placed[host.code] = placed.get(host.code, 0) + 1
        code = make_grid_code(host.code, sequence)
        area = site(host.geometry, _rng(seed, code), *special.size)
        yield Cell(code, "special", host.code, _canonical(area), f"{host.name}{special.name}")


def _rng(seed: int, code: str) -> np.random.Generator:
    return np.random.default_rng([seed, int(code)])


def _canonical(area: Area) -> Area:
    normalized: Area = shapely.normalize(area)
    return normalized
