"""Recent cases of one correlation family, indexed by place and time.

A spatial hash of cells about 1 km wide: a report is compared only with the cases in the cells its
search box touches, and only their exact distance is computed, so correlation costs the same with
ten recent cases as with a hundred thousand. Cases leave the index when they fall out of the window.
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

CELL_DEG = 0.01  # ~1.1 km north-south, ~0.95 km east-west at Yangzhou's latitude
MAX_CELLS = 400  # an area wider than this many cells goes to the "wide" list, scanned every time
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQUATOR = 111_320.0


Bounds = tuple[float, float, float, float]  # (min lon, min lat, max lon, max lat)


@dataclass(frozen=True, slots=True)
class RecentCase:
    case_id: uuid.UUID
    family: str
    shape: BaseGeometry  # WGS-84 point or area, lon/lat axis order
    at: datetime
    network: str
    # The shape's box as floats, read from shapely once (or given by a caller that knows them: a
    # point's box is its position): every search and distance between points works on them (a shapely
    # attribute read costs about two microseconds, several per comparison).
    bounds: Bounds = field(default=None, compare=False, repr=False)  # type: ignore[assignment]
    point: bool = field(init=False, compare=False, repr=False)
    # The index cells the box covers (None: too many, a "wide" case), once: a case is added to two
    # indexes (its batch's and the book's) and pruned from one.
    cells: list[tuple[int, int]] | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.bounds is None:
            object.__setattr__(self, "bounds", tuple(self.shape.bounds))
        object.__setattr__(self, "point", isinstance(self.shape, Point))
        object.__setattr__(self, "cells", _cells(*self.bounds))


def ground_m(ax: float, ay: float, bx: float, by: float) -> float:
    """Approximate ground distance between two WGS-84 positions; ~1 % at city scale."""
    lat = math.radians((ay + by) / 2)
    return math.hypot((bx - ax) * M_PER_DEG_LON_EQUATOR * math.cos(lat), (by - ay) * M_PER_DEG_LAT)


def distance_m(a: BaseGeometry, b: BaseGeometry) -> float:
    """Approximate ground distance between two WGS-84 shapes (0 when they touch); ~1 % at city scale."""
    if isinstance(a, Point) and isinstance(b, Point):
        return ground_m(a.x, a.y, b.x, b.y)
    from shapely.ops import nearest_points

    pa, pb = nearest_points(a, b)
    return ground_m(pa.x, pa.y, pb.x, pb.y)


def gap_m(a: Bounds, b: Bounds) -> float:
    """A lower bound of `ground_m` between any position in box `a` and any in box `b` (0 when the
    boxes meet): each axis's gap between the boxes, the longitude's at the cosine of the latitude
    farthest from the equator either box reaches (`ground_m` takes it at the two positions' mean
    latitude, which lies between)."""
    gx = max(0.0, b[0] - a[2], a[0] - b[2])
    gy = max(0.0, b[1] - a[3], a[1] - b[3])
    if gx == 0.0 and gy == 0.0:
        return 0.0
    lat = max(abs(min(a[1], b[1])), abs(max(a[3], b[3])))
    return math.hypot(gx * M_PER_DEG_LON_EQUATOR * math.cos(math.radians(lat)), gy * M_PER_DEG_LAT)


# Room for rounding between the bound and the distance computed another way (a micrometre).
_GAP_SLACK_M = 1e-6


def distance_to(shape: BaseGeometry, bounds: Bounds, r: RecentCase, limit: float = math.inf) -> float:
    """`distance_m(shape, r.shape)`, where `bounds` are `shape`'s, or `math.inf` when it surely
    exceeds `limit`: between two points from the boxes' corners (a point's box is its position, the
    same floats), without shapely; between areas, shapely (~12 µs for two 64-gons) only when the
    boxes' gap (`gap_m`, ~1 µs) does not already exceed `limit`."""
    if r.point and isinstance(shape, Point):
        return ground_m(bounds[0], bounds[1], r.bounds[0], r.bounds[1])
    if gap_m(bounds, r.bounds) > limit + _GAP_SLACK_M:
        return math.inf
    return distance_m(shape, r.shape)


def _cells(
    minx: float, miny: float, maxx: float, maxy: float, most: int = MAX_CELLS
) -> list[tuple[int, int]] | None:
    """The cells a box touches; None when they are more than `most`."""
    xs = range(math.floor(minx / CELL_DEG), math.floor(maxx / CELL_DEG) + 1)
    ys = range(math.floor(miny / CELL_DEG), math.floor(maxy / CELL_DEG) + 1)
    if len(xs) * len(ys) > most:
        return None
    return [(x, y) for x in xs for y in ys]


@dataclass
class RecentIndex:
    cells: dict[tuple[int, int], list[RecentCase]] = field(default_factory=dict)
    wide: list[RecentCase] = field(default_factory=list)
    by_time: deque[RecentCase] = field(default_factory=deque)
    ids: set[uuid.UUID] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, r: RecentCase) -> None:
        """Idempotent: a case already present is not added twice."""
        if r.case_id in self.ids:
            return
        self.ids.add(r.case_id)
        self.by_time.append(r)
        cells = r.cells
        if cells is None:
            self.wide.append(r)
        else:
            for c in cells:
                self.cells.setdefault(c, []).append(r)

    def near(self, bounds: Bounds, radius_m: float) -> Iterator[RecentCase]:
        """Every case whose box comes within `radius_m` of the box `bounds` (a shape's `.bounds`; a
        superset of the answer)."""
        minx, miny, maxx, maxy = bounds
        dlat = radius_m / M_PER_DEG_LAT
        dlon = radius_m / (M_PER_DEG_LON_EQUATOR * max(0.1, math.cos(math.radians((miny + maxy) / 2))))
        cells = _cells(minx - dlon, miny - dlat, maxx + dlon, maxy + dlat, min(MAX_CELLS, len(self.by_time)))
        if cells is None:
            # Fewer cases than cells to visit (a wide search over a thin window: a CAP area and a
            # flood's 3 km visit ~60 cells for ~10 cases), or a search too wide: every case, once.
            yield from self.by_time
            return
        # A case is one object in every cell it covers (`add` takes each id once): seen by identity,
        # which hashes without the UUID's Python-level __hash__.
        seen: set[int] = set()
        pools = [self.wide] + [self.cells.get(c, []) for c in cells]
        for pool in pools:
            for r in pool:
                if id(r) not in seen:
                    seen.add(id(r))
                    yield r

    def prune(self, horizon: datetime) -> None:
        """Forget the cases that happened before `horizon` (in the order they were added)."""
        while self.by_time and self.by_time[0].at < horizon:
            old = self.by_time.popleft()
            self.ids.discard(old.case_id)
            cells = old.cells
            pools = [self.wide] if cells is None else [self.cells.get(c, []) for c in cells]
            for pool in pools:
                if old in pool:
                    pool.remove(old)
