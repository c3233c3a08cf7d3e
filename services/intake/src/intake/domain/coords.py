"""Coordinate systems of the legacy feeds, normalised to WGS-84 on intake.

WGS-84 is what GPS, CAP and Open311 use; CGCS2000 (China's geodetic datum) agrees with it to within
centimetres, so it is treated as identical. GCJ-02 is the mandated obfuscation used by AMap/Tencent
(the public-safety feed) and BD-09 is Baidu's further offset on top of it (the party-building app).

Contract:
- The forward transforms (WGS-84 -> GCJ-02 -> BD-09) are the published formulas, applied only inside
  China's bounding box (``in_china``); outside it every system is WGS-84 (identity).
- The inverses are iterative (fixed point on the forward function), accurate to far better than 0.1 m:
  they stop when a step changes less than 1e-9 degrees or after 30 iterations. A point whose inverse
  falls outside the box is returned unchanged. Every WGS-84 point inside the box round-trips; but the
  forward map jumps at the box edge, so points within about 1 km outside that edge (open sea or
  foreign territory) may be taken for offset points from inside and are not identity there.
- Every public function validates its input: NaN, infinities and out-of-range latitude or longitude
  raise ``Rejected("coords.invalid", ...)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from intake.domain.errors import Rejected

__all__ = [
    "CoordSystem",
    "from_wgs84",
    "from_wgs84_many",
    "haversine_m",
    "in_china",
    "to_wgs84",
    "to_wgs84_many",
    "valid_mask",
    "validate",
]

Floats = NDArray[np.float64]
_Forward = Callable[[Floats, Floats], tuple[Floats, Floats]]

# Krasovsky 1940 ellipsoid, as the GCJ-02 algorithm publishes it.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0
# The box the published algorithm uses for "inside China".
_LAT_MIN, _LAT_MAX = 0.8293, 55.8271
_LON_MIN, _LON_MAX = 72.004, 137.8347
_TOLERANCE_DEG = 1e-9
_MAX_ITERATIONS = 30
# Offsets are below 0.03 degrees everywhere in the box, so no solution lies further than this from it.
_SEARCH_MARGIN_DEG = 0.1
_EDGE_SLACK_DEG = 1e-7  # about 1 cm
_EARTH_MEAN_RADIUS_M = 6371008.8  # IUGG mean radius R1


class CoordSystem(StrEnum):
    """The coordinate reference systems that arrive on the legacy feeds."""

    WGS84 = "wgs84"
    CGCS2000 = "cgcs2000"
    GCJ02 = "gcj02"
    BD09 = "bd09"


def validate(lat: float, lon: float) -> None:
    """Raise ``Rejected("coords.invalid")`` unless lat is in [-90, 90] and lon in [-180, 180], both finite."""
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise Rejected("coords.invalid", f"coordinates not finite: lat={lat!r}, lon={lon!r}")
    if not -90.0 <= lat <= 90.0:
        raise Rejected("coords.invalid", f"latitude {lat!r} outside [-90, 90] (lon={lon!r})")
    if not -180.0 <= lon <= 180.0:
        raise Rejected("coords.invalid", f"longitude {lon!r} outside [-180, 180] (lat={lat!r})")


def in_china(lat: float, lon: float) -> bool:
    """Whether the GCJ-02 offset applies at this point (the published bounding box, edges included)."""
    return _LAT_MIN <= lat <= _LAT_MAX and _LON_MIN <= lon <= _LON_MAX


def to_wgs84(lat: float, lon: float, system: CoordSystem) -> tuple[float, float]:
    """Convert one point in ``system`` to WGS-84 (lat, lon) in degrees."""
    validate(lat, lon)
    lats, lons = to_wgs84_many(np.array([lat]), np.array([lon]), system)
    return float(lats[0]), float(lons[0])


def from_wgs84(lat: float, lon: float, system: CoordSystem) -> tuple[float, float]:
    """Convert one WGS-84 point to ``system`` (lat, lon) in degrees."""
    validate(lat, lon)
    lats, lons = from_wgs84_many(np.array([lat]), np.array([lon]), system)
    return float(lats[0]), float(lons[0])


def to_wgs84_many(lats: ArrayLike, lons: ArrayLike, system: CoordSystem) -> tuple[Floats, Floats]:
    """Vectorised ``to_wgs84`` over equal-length 1-D arrays; returns new arrays.

    Raises ``Rejected("coords.invalid")`` naming the first invalid index if any point is invalid:
    a batch is converted whole or not at all, so callers filter with ``valid_mask`` first.
    """
    lat, lon = _validated(lats, lons)
    if system in (CoordSystem.WGS84, CoordSystem.CGCS2000):
        return lat.copy(), lon.copy()
    forward = _wgs_to_gcj if system is CoordSystem.GCJ02 else _wgs_to_bd
    return _inverse(forward, lat, lon)


def from_wgs84_many(lats: ArrayLike, lons: ArrayLike, system: CoordSystem) -> tuple[Floats, Floats]:
    """Vectorised ``from_wgs84`` over equal-length 1-D arrays; returns new arrays."""
    lat, lon = _validated(lats, lons)
    if system in (CoordSystem.WGS84, CoordSystem.CGCS2000):
        return lat.copy(), lon.copy()
    forward = _wgs_to_gcj if system is CoordSystem.GCJ02 else _wgs_to_bd
    inside = _in_china_mask(lat, lon)
    out_lat, out_lon = lat.copy(), lon.copy()
    out_lat[inside], out_lon[inside] = forward(lat[inside], lon[inside])
    return out_lat, out_lon


def valid_mask(lats: ArrayLike, lons: ArrayLike) -> NDArray[np.bool_]:
    """Element-wise: finite, lat in [-90, 90], lon in [-180, 180]."""
    lat = np.asarray(lats, dtype=np.float64)
    lon = np.asarray(lons, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        mask: NDArray[np.bool_] = (np.abs(lat) <= 90.0) & (np.abs(lon) <= 180.0)
    return mask


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres on a sphere of the mean Earth radius (error < 0.5 %)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_MEAN_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _validated(lats: ArrayLike, lons: ArrayLike) -> tuple[Floats, Floats]:
    lat = np.atleast_1d(np.asarray(lats, dtype=np.float64))
    lon = np.atleast_1d(np.asarray(lons, dtype=np.float64))
    if lat.shape != lon.shape or lat.ndim != 1:
        raise ValueError(f"lats and lons must be 1-D of equal length, got {lat.shape} and {lon.shape}")
    bad = np.flatnonzero(~valid_mask(lat, lon))
    if bad.size:
        i = int(bad[0])
        detail = f"point {i} of {lat.size}: lat={float(lat[i])!r}, lon={float(lon[i])!r}"
        raise Rejected("coords.invalid", f"{detail} is not a finite WGS-84 range coordinate")
    return lat, lon


def _in_china_mask(lat: Floats, lon: Floats, margin: float = 0.0) -> NDArray[np.bool_]:
    mask: NDArray[np.bool_] = (
        (lat >= _LAT_MIN - margin)
        & (lat <= _LAT_MAX + margin)
        & (lon >= _LON_MIN - margin)
        & (lon <= _LON_MAX + margin)
    )
    return mask


def _wgs_to_gcj(lat: Floats, lon: Floats) -> tuple[Floats, Floats]:
    """The published WGS-84 -> GCJ-02 formula, without the bounding-box test."""
    x, y = lon - 105.0, lat - 35.0
    pi = math.pi
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    d_lat += (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    d_lat += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    d_lat += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    d_lon += (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    d_lon += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    d_lon += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * pi)
    return lat + d_lat, lon + d_lon


def _gcj_to_bd(lat: Floats, lon: Floats) -> tuple[Floats, Floats]:
    """Baidu's published GCJ-02 -> BD-09 rotation and shift."""
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.sin(theta) + 0.006, z * np.cos(theta) + 0.0065


def _wgs_to_bd(lat: Floats, lon: Floats) -> tuple[Floats, Floats]:
    return _gcj_to_bd(*_wgs_to_gcj(lat, lon))


def _inverse(forward: _Forward, target_lat: Floats, target_lon: Floats) -> tuple[Floats, Floats]:
    """Solve forward(w) = target by fixed-point iteration w <- w - (forward(w) - target).

    Converges fast because the offsets vary slowly: their derivative is of order 1e-4, so each step
    gains about four digits. Only targets near the box are solved: far outside it the published
    formula is meaningless (it diverges towards the poles) and the answer is the identity anyway.
    """
    near = _in_china_mask(target_lat, target_lon, margin=_SEARCH_MARGIN_DEG)
    out_lat, out_lon = target_lat.copy(), target_lon.copy()
    if not near.any():
        return out_lat, out_lon
    goal_lat, goal_lon = target_lat[near], target_lon[near]
    lat, lon = goal_lat.copy(), goal_lon.copy()
    for _ in range(_MAX_ITERATIONS):
        f_lat, f_lon = forward(lat, lon)
        step_lat, step_lon = f_lat - goal_lat, f_lon - goal_lon
        lat -= step_lat
        lon -= step_lon
        if max(float(np.max(np.abs(step_lat))), float(np.max(np.abs(step_lon)))) < _TOLERANCE_DEG:
            break
    # Decided by the solution, not the target, so that every point inside the box round-trips; the
    # slack absorbs the solver's last digits for points exactly on the edge.
    keep = _in_china_mask(lat, lon, margin=_EDGE_SLACK_DEG)
    out_lat[near] = np.where(keep, lat, goal_lat)
    out_lon[near] = np.where(keep, lon, goal_lon)
    return out_lat, out_lon
