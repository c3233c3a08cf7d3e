"""Seeded partition of an area into non-overlapping, gap-free pieces (clipped Voronoi cells).

Real grid polygons are not public; these stand in for them. Every function takes its numpy Generator
explicitly (no global random state). Siblings are cut from one Voronoi diagram, so neighbours share the
same edge vertices; clipping to the parent runs in full double precision (snapping to a lattice would
move points cut on the parent's edges off those edges, up to half a lattice step outside the parent).
Overlaps, gaps and overhangs are therefore only floating-point rounding, far below 1e-9 of an area.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import MultiPolygon, Polygon, box

from onegrid.geo import Area

AREA_TOLERANCE = 1e-9  # relative: what floating-point clipping may lose or gain


def points_inside(area: Area, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` uniform random (lon, lat) points strictly inside ``area``, shape (count, 2)."""
    minx, miny, maxx, maxy = area.bounds
    shapely.prepare(area)
    found: list[np.ndarray] = []
    total = 0
    while total < count:
        xs = rng.uniform(minx, maxx, 4 * count + 16)
        ys = rng.uniform(miny, maxy, 4 * count + 16)
        inside = shapely.contains_xy(area, xs, ys)
        found.append(np.column_stack([xs[inside], ys[inside]]))
        total += int(inside.sum())
    return np.concatenate(found)[:count]


def partition(area: Area, count: int, rng: np.random.Generator, relax: int = 1) -> list[Area]:
    """Split ``area`` into ``count`` pieces in reading order (north to south, then west to east).

    Pieces cover ``area`` exactly (area sums agree to AREA_TOLERANCE) and overlap nowhere; a piece
    that the parent's shape cut in two keeps its largest part and hands the others to the neighbour
    sharing the longest edge, so pieces are single polygons wherever the parent allows. ``relax`` Lloyd
    iterations even out the piece sizes. Raises ValueError if the pieces do not add up to the parent.
    """
    if count < 1:
        raise ValueError(f"cannot split an area into {count} pieces")
    if count == 1:
        return [area]
    seeds = points_inside(area, count, rng)
    for _ in range(relax):
        seeds = _centres(_voronoi(area, seeds), seeds)
    pieces = _absorb_fragments(_voronoi(area, seeds))
    total = float(sum(p.area for p in pieces))
    if abs(total - area.area) > AREA_TOLERANCE * area.area:
        raise ValueError(f"partition lost area: pieces sum to {total!r}, parent is {area.area!r}")
    return _reading_order(pieces, area)


def site(area: Area, rng: np.random.Generator, width: float, height: float) -> Area:
    """A small rotated rectangle (degrees) lying inside ``area``, e.g. a school's or a plant's grounds."""
    half_diagonal = math.hypot(width, height) / 2
    room = area.buffer(-half_diagonal)
    scale = 1.0
    while room.is_empty:  # small community: shrink the site until it fits
        scale /= 2
        room = area.buffer(-half_diagonal * scale)
    (x, y) = points_inside(as_area(room), 1, rng)[0]
    angle = float(rng.uniform(0.0, 90.0))
    w, h = width * scale / 2, height * scale / 2
    rect = affinity.rotate(box(x - w, y - h, x + w, y + h), angle, origin=(x, y))
    return as_area(shapely.intersection(rect, area))


def _voronoi(area: Area, seeds: np.ndarray) -> list[Area]:
    minx, miny, maxx, maxy = area.bounds
    frame = box(minx - 1, miny - 1, maxx + 1, maxy + 1)
    regions = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=frame, ordered=True)
    cells = shapely.get_parts(regions)
    if len(cells) != len(seeds):
        raise ValueError(f"{len(seeds)} seeds gave {len(cells)} Voronoi cells (duplicate seeds?)")
    return [as_area(g) for g in shapely.intersection(cells, area)]


def _centres(cells: list[Area], fallback: np.ndarray) -> np.ndarray:
    centres = shapely.get_coordinates(shapely.centroid(cells))
    inside = np.array([c.contains(shapely.points(p)) for c, p in zip(cells, centres, strict=True)])
    return np.where(inside[:, None], centres, fallback)


def _absorb_fragments(cells: list[Area]) -> list[Area]:
    mains: list[Polygon] = []
    fragments: list[tuple[int, Polygon]] = []
    for i, cell in enumerate(cells):
        parts = sorted(_polygons(cell), key=lambda p: p.area, reverse=True)
        mains.append(parts[0])
        fragments += [(i, p) for p in parts[1:]]
    extra: dict[int, list[Polygon]] = {}
    for owner, fragment in fragments:
        best, best_length = owner, 0.0
        for j, main in enumerate(mains):
            if j != owner and main.intersects(fragment):
                shared = float(shapely.length(shapely.intersection(main.boundary, fragment.boundary)))
                if shared > best_length:
                    best, best_length = j, shared
        extra.setdefault(best, []).append(fragment)
    return [
        as_area(shapely.union_all([main, *extra[i]])) if i in extra else main for i, main in enumerate(mains)
    ]


def _reading_order(pieces: list[Area], area: Area) -> list[Area]:
    maxy = area.bounds[3]
    band = max(math.sqrt(area.area / len(pieces)), 1e-9)
    anchors = [p.representative_point() for p in pieces]
    order = sorted(range(len(pieces)), key=lambda i: (math.floor((maxy - anchors[i].y) / band), anchors[i].x))
    return [pieces[i] for i in order]


def _polygons(geometry: shapely.Geometry) -> list[Polygon]:
    return [g for g in shapely.get_parts(geometry) if isinstance(g, Polygon) and not g.is_empty]


def as_area(geometry: shapely.Geometry) -> Area:
    """Keep only the polygonal parts (clipping can leave stray points or lines on shared edges)."""
    if isinstance(geometry, Polygon | MultiPolygon):
        return geometry
    parts = [g for g in shapely.get_parts(geometry) if isinstance(g, Polygon | MultiPolygon)]
    polygons = [p for g in parts for p in _polygons(g)]
    if not polygons:
        raise ValueError("clipping left no polygonal area")
    return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)
