"""The cells of an index arranged as a tree, and the leaf regions that tile the territory.

A leaf region is the part of a territorial cell that none of its children cover: the whole cell for a
unit without children, nothing for a unit its children partition (within AREA_TOLERANCE), and the
uncovered remainder otherwise (e.g. while a micro-grid is being redrawn). Leaf regions never overlap
(up to floating-point rounding on shared edges), so a point lies in at most one of them but on a shared
edge; there the region with the smallest code wins, which makes boundary points deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

from onegrid.geo.cell import TERRITORIAL_LEVELS, Area, Cell, GridChain

AREA_TOLERANCE = 1e-9  # relative: children covering this much less than their parent still partition it
CODE_DTYPE = "U18"
CHAIN_DTYPE = np.dtype([(level, CODE_DTYPE) for level in TERRITORIAL_LEVELS])
_MAX_DEPTH = 16


@dataclass(frozen=True, slots=True)
class Hierarchy:
    """Territorial cells, special cells, and the leaf regions in code order with their chains."""

    cells: dict[str, Cell]
    specials: tuple[Cell, ...]
    region_codes: tuple[str, ...]
    region_areas: tuple[Area, ...]
    chains: np.ndarray  # CHAIN_DTYPE, one row per region; "" where the chain has no unit at a level
    # Chains built so far, by region and special cells: a GridChain is immutable, and building one
    # from its row costs ~30 times a dict hit (a lookup per point of every batch).
    _built: dict[tuple[int, tuple[str, ...]], GridChain] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, cells: Iterable[Cell]) -> Hierarchy:
        """Raises ValueError on a duplicate code or an unknown level, TypeError on a non-polygonal area."""
        territorial: dict[str, Cell] = {}
        specials: dict[str, Cell] = {}
        for cell in cells:
            check_cell(cell)
            if cell.code in territorial or cell.code in specials:
                raise ValueError(f"cell {cell.code} appears twice")
            (specials if cell.level == "special" else territorial)[cell.code] = cell
        regions = sorted(_leaf_regions(territorial).items())
        chains = np.zeros(len(regions), dtype=CHAIN_DTYPE)
        for row, (code, _) in enumerate(regions):
            for level, unit in _ancestry(territorial, code).items():
                chains[row][level] = unit
        return cls(
            cells=territorial,
            specials=tuple(specials[c] for c in sorted(specials)),
            region_codes=tuple(code for code, _ in regions),
            region_areas=tuple(area for _, area in regions),
            chains=chains,
        )

    def chain(self, region: int, specials: tuple[str, ...] = ()) -> GridChain:
        key = (region, specials)
        built = self._built.get(key)
        if built is None:
            row = self.chains[region]
            codes = {level: (str(row[level]) or None) for level in TERRITORIAL_LEVELS}
            built = self._built[key] = GridChain(**codes, specials=specials)
        return built


def check_cell(cell: Cell) -> None:
    """Raises ValueError (unknown level, empty code, invalid geometry) or TypeError (not polygonal)."""
    if cell.level not in (*TERRITORIAL_LEVELS, "special"):
        raise ValueError(f"cell {cell.code}: unknown level {cell.level!r}")
    if not cell.code or len(cell.code) > 18:
        raise ValueError(f"cell code {cell.code!r} must have 1 to 18 characters")
    if not isinstance(cell.geometry, Polygon | MultiPolygon):
        raise TypeError(f"cell {cell.code}: geometry must be a Polygon or MultiPolygon")
    if cell.geometry.is_empty or not cell.geometry.is_valid:
        raise ValueError(
            f"cell {cell.code}: geometry is empty or invalid ({shapely.is_valid_reason(cell.geometry)})"
        )


def _leaf_regions(cells: dict[str, Cell]) -> dict[str, Area]:
    children: dict[str, list[Cell]] = {}
    for cell in cells.values():
        if cell.parent is not None and cell.parent in cells:
            children.setdefault(cell.parent, []).append(cell)
    regions: dict[str, Area] = {}
    for code, cell in cells.items():
        kids = children.get(code)
        if not kids:
            regions[code] = cell.geometry
            continue
        area = cell.geometry.area
        if sum(k.geometry.area for k in kids) >= area * (1 - AREA_TOLERANCE):
            continue
        rest = shapely.difference(cell.geometry, shapely.union_all([k.geometry for k in kids]))
        polygons = [p for p in shapely.get_parts(rest) if isinstance(p, Polygon) and p.area > 0]
        if sum(p.area for p in polygons) > area * AREA_TOLERANCE:
            regions[code] = polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)
    return regions


def _ancestry(cells: dict[str, Cell], code: str) -> dict[str, str]:
    units: dict[str, str] = {}
    current: str | None = code
    for _ in range(_MAX_DEPTH):
        if current is None or current not in cells:
            break
        cell = cells[current]
        units.setdefault(cell.level, cell.code)
        current = cell.parent
    return units
