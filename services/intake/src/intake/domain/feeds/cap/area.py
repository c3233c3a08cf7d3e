"""The ``area`` of a CAP 1.2 ``info`` block: what the texts mean and what shape they describe.

Contract (see ``contracts/legacy/cap.md``):
- Coordinates are WGS-84 decimal degrees written ``lat,lon`` (latitude first), plain decimals only
  (no exponent, NaN or infinity); latitude in [-90, 90], longitude in [-180, 180].
- A polygon is whitespace-separated ``lat,lon`` pairs forming a closed ring of at least 4 points
  (first point == last point). A circle is ``lat,lon radius`` with the radius in kilometres,
  0 <= radius <= ``MAX_RADIUS_KM``. Anything else raises ``Rejected("cap.invalid_area")``.
- ``geometry()`` works in shapely's (x=lon, y=lat) axis order, the reverse of CAP's text.
- One alert's polygons hold at most ``MAX_ALERT_VERTICES`` points (``cap.too_many_vertices``):
  repairing a self-intersecting ring costs far more than linear time, and even below the bound a
  crafted ring can take minutes, so the service computes geometry in a worker process with a time
  limit (``intake.cap_geometry``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, NamedTuple

import numpy as np
import shapely
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry

from intake.domain.errors import Rejected

__all__ = [
    "CIRCLE_SEGMENTS",
    "KM_PER_DEGREE",
    "MAX_ALERT_VERTICES",
    "MAX_RADIUS_KM",
    "CapArea",
    "CapCircle",
    "CapPoint",
    "CapPolygon",
    "CapValue",
    "check_vertices",
    "circle_shape",
    "parse_circle",
    "parse_decimal",
    "parse_polygon",
    "union_shapes",
]

CIRCLE_SEGMENTS: Final = 64
# Mean Earth radius 6371.0088 km (IUGG): length of one degree of a great circle.
KM_PER_DEGREE: Final = 2 * math.pi * 6371.0088 / 360
# Half the Earth's circumference: a larger circle would cover the globe more than once.
MAX_RADIUS_KM: Final = 20_015.0
# Detailed real outlines (a district, a river) stay well below this; a document near the size cap
# can hold ~34,000 points.
MAX_ALERT_VERTICES: Final = 20_000
# Near the poles cos(lat) tends to 0; the floor keeps longitudes finite there.
_MIN_COS_LAT: Final = 1e-6
# A circle this many degrees of latitude across or more (~1 cm) has 64 distinct vertices in floats.
_MIN_PLAIN_DLAT: Final = 1e-7

# The unit circle's vertices, from math.sin/math.cos of the same angles as always.
_UNIT_SIN: Final = np.array([math.sin(2 * math.pi * k / CIRCLE_SEGMENTS) for k in range(CIRCLE_SEGMENTS)])
_UNIT_COS: Final = np.array([math.cos(2 * math.pi * k / CIRCLE_SEGMENTS) for k in range(CIRCLE_SEGMENTS)])

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)


class CapPoint(NamedTuple):
    """A WGS-84 point in CAP's own order: latitude first."""

    lat: float
    lon: float


CapPolygon = tuple[CapPoint, ...]


@dataclass(frozen=True, slots=True)
class CapValue:
    """A CAP ``valueName``/``value`` pair (geocode, eventCode, parameter). ``value`` may be empty."""

    value_name: str
    value: str


@dataclass(frozen=True, slots=True)
class CapCircle:
    center: CapPoint
    radius_km: float


@dataclass(frozen=True, slots=True)
class CapArea:
    """One CAP ``area``. Polygons are closed rings of (lat, lon) points; altitude and ceiling in feet.

    ``geocodes`` keep the sender's ``valueName`` (in China, a GB/T 2260 division code scheme).
    """

    area_desc: str
    polygons: tuple[CapPolygon, ...]
    circles: tuple[CapCircle, ...]
    geocodes: tuple[CapValue, ...]
    altitude: float | None
    ceiling: float | None

    def geometry(self) -> BaseGeometry | None:
        """Union of the polygons and circles in (lon, lat) order; None when the area has only geocodes.

        Polygons are repaired with ``shapely.make_valid`` (senders draw self-touching rings), circles
        are ``circle_shape``. The result is normally a Polygon or MultiPolygon; a zero-radius circle
        contributes a Point and a degenerate ring a line, so a GeometryCollection is possible.
        Nothing is wrapped at the antimeridian.
        """
        shapes = [shapely.make_valid(Polygon([(p.lon, p.lat) for p in ring])) for ring in self.polygons]
        shapes += [circle_shape(circle) for circle in self.circles]
        return union_shapes(shapes)


def check_vertices(areas: Iterable[CapArea]) -> None:
    """``Rejected("cap.too_many_vertices")`` when the areas' polygons hold more than
    ``MAX_ALERT_VERTICES`` points together (checked before any geometry is computed)."""
    total = sum(len(ring) for area in areas for ring in area.polygons)
    if total > MAX_ALERT_VERTICES:
        raise Rejected(
            "cap.too_many_vertices", f"the alert's polygons hold {total} points, limit {MAX_ALERT_VERTICES}"
        )


def union_shapes(shapes: Iterable[BaseGeometry | None]) -> BaseGeometry | None:
    """Union of the given shapes, ignoring None; None when there is nothing to unite.

    A single valid Point or Polygon (what a circle, a plain ring and every area's own union make) is
    its own union, returned as it is (the union of one polygon is that polygon, vertex for vertex; it
    cost ~5 µs at each of the three levels of an alert). A single MultiPolygon or collection still goes
    through the union, which orders its parts."""
    present = [shape for shape in shapes if shape is not None]
    if not present:
        return None
    if len(present) == 1 and isinstance(present[0], Point | Polygon):
        return present[0]
    return shapely.unary_union(present)


def circle_shape(circle: CapCircle) -> BaseGeometry:
    """The circle as a polygon of ``CIRCLE_SEGMENTS`` vertices on the sphere, in (lon, lat) order.

    The radius becomes degrees of latitude by ``KM_PER_DEGREE`` and is widened by 1/cos(lat) on the
    longitude axis, so a circle keeps its ground shape away from the equator. Latitudes are clamped to
    [-90, 90]; longitudes are not wrapped. A zero radius gives the centre Point.
    """
    lat0, lon0 = circle.center
    if circle.radius_km == 0:
        return Point(lon0, lat0)
    dlat = circle.radius_km / KM_PER_DEGREE
    dlon = dlat / max(math.cos(math.radians(lat0)), _MIN_COS_LAT)
    # One array operation per axis (a Python loop over the vertices cost ~60 µs a circle); the same
    # IEEE products and sums as the loop, so the same coordinates.
    ring = np.empty((CIRCLE_SEGMENTS, 2))
    ring[:, 0] = lon0 + dlon * _UNIT_COS
    if dlat >= _MIN_PLAIN_DLAT and lat0 - dlat >= -90.0 and lat0 + dlat <= 90.0:
        # Distinct vertices on an ellipse, none clamped: a convex ring, valid as it is (repairing it
        # cost ~7 µs a circle and changed nothing).
        ring[:, 1] = lat0 + dlat * _UNIT_SIN
        return shapely.polygons(ring)
    ring[:, 1] = np.clip(lat0 + dlat * _UNIT_SIN, -90.0, 90.0)
    return shapely.make_valid(shapely.polygons(ring))


def parse_decimal(text: str, where: str, reason: str) -> float:
    """A plain decimal number (``-12.5``, ``3``, ``.5``), or ``Rejected(reason)`` naming ``where``."""
    if not _DECIMAL.fullmatch(text):
        raise Rejected(reason, f"{where}: {text[:60]!r} is not a decimal number")
    return float(text)


def parse_polygon(text: str, where: str) -> CapPolygon:
    """``lat,lon lat,lon ...`` as a closed ring of at least 4 points, else ``cap.invalid_area``."""
    points = tuple(_parse_point(pair, where) for pair in text.split())
    if len(points) < 4:
        raise Rejected("cap.invalid_area", f"{where}: a polygon needs at least 4 points, got {len(points)}")
    if points[0] != points[-1]:
        raise Rejected(
            "cap.invalid_area",
            f"{where}: ring is not closed, first point {points[0].lat},{points[0].lon} "
            f"differs from last point {points[-1].lat},{points[-1].lon}",
        )
    return points


def parse_circle(text: str, where: str) -> CapCircle:
    """``lat,lon radiusKm``, else ``cap.invalid_area``."""
    parts = text.split()
    if len(parts) != 2:
        raise Rejected("cap.invalid_area", f"{where}: circle {text[:60]!r} is not 'lat,lon radiusKm'")
    radius = parse_decimal(parts[1], f"{where} radius", "cap.invalid_area")
    if not 0 <= radius <= MAX_RADIUS_KM:
        raise Rejected("cap.invalid_area", f"{where}: radius {radius} km outside [0, {MAX_RADIUS_KM}]")
    return CapCircle(_parse_point(parts[0], where), radius)


def _parse_point(pair: str, where: str) -> CapPoint:
    parts = pair.split(",")
    if len(parts) != 2:
        raise Rejected("cap.invalid_area", f"{where}: {pair[:60]!r} is not a 'lat,lon' pair")
    lat = parse_decimal(parts[0], f"{where} latitude", "cap.invalid_area")
    lon = parse_decimal(parts[1], f"{where} longitude", "cap.invalid_area")
    if not -90 <= lat <= 90:
        raise Rejected("cap.invalid_area", f"{where}: latitude {lat} outside [-90, 90] in {pair!r}")
    if not -180 <= lon <= 180:
        raise Rejected("cap.invalid_area", f"{where}: longitude {lon} outside [-180, 180] in {pair!r}")
    return CapPoint(lat, lon)
