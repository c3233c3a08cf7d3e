"""The spatial index of recent cases finds exactly what a scan of every case would."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from shapely.geometry import Point, box

from intake.domain.nearby import RecentCase, RecentIndex, distance_m

T0 = datetime(2026, 11, 30, tzinfo=UTC)


def test_near_is_a_superset_of_the_brute_force_answer() -> None:
    rng = random.Random(5)
    index, everything = RecentIndex(), []
    for i in range(2000):
        lon, lat = 119.41 + rng.uniform(-0.1, 0.1), 32.39 + rng.uniform(-0.1, 0.1)
        shape = (
            Point(lon, lat)
            if i % 10
            else box(lon, lat, lon + rng.uniform(0, 0.05), lat + rng.uniform(0, 0.05))
        )
        r = RecentCase(uuid.uuid4(), "fire", shape, T0 + timedelta(seconds=i), "party")
        index.add(r)
        index.add(r)  # idempotent
        everything.append(r)
    assert len(index) == 2000
    for _ in range(200):
        q = Point(119.41 + rng.uniform(-0.1, 0.1), 32.39 + rng.uniform(-0.1, 0.1))
        radius = rng.choice([100.0, 500.0, 3000.0])
        want = {r.case_id for r in everything if distance_m(q, r.shape) <= radius}
        got = {r.case_id for r in index.near(q.bounds, radius) if distance_m(q, r.shape) <= radius}
        assert got == want


def test_prune_forgets_old_cases_everywhere() -> None:
    index = RecentIndex()
    old = RecentCase(uuid.uuid4(), "fire", Point(119.4, 32.4), T0, "party")
    wide = RecentCase(uuid.uuid4(), "fire", box(118.0, 31.0, 121.0, 34.0), T0, "emergency")
    new = RecentCase(uuid.uuid4(), "fire", Point(119.4, 32.4), T0 + timedelta(hours=5), "safety")
    for r in (old, wide, new):
        index.add(r)
    index.prune(T0 + timedelta(hours=1))
    assert [r.case_id for r in index.near(Point(119.4, 32.4).bounds, 100)] == [new.case_id]
    assert len(index) == 1


def test_distance_between_points_matches_the_check_point_offset() -> None:
    # DOMAIN.md: the WGS and GCJ positions of the Yangzhou check point are about 556 m apart.
    d = distance_m(Point(119.4129, 32.3942), Point(119.4183802, 32.3923204))
    assert 540 < d < 570
