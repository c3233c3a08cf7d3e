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


def test_near_gives_each_case_once_whether_it_visits_cells_or_every_case() -> None:
    rng = random.Random(9)
    for population in (3, 40, 400):
        index = RecentIndex()
        for i in range(population):
            lon, lat = 119.41 + rng.uniform(-0.05, 0.05), 32.39 + rng.uniform(-0.05, 0.05)
            shape = box(lon, lat, lon + rng.uniform(0, 0.03), lat + rng.uniform(0, 0.03))
            index.add(RecentCase(uuid.uuid4(), "flood", shape, T0 + timedelta(seconds=i), "emergency"))
        for radius in (50.0, 3000.0, 20_000.0):
            q = box(119.40, 32.38, 119.41, 32.39)
            got = [r.case_id for r in index.near(q.bounds, radius)]
            assert len(got) == len(set(got))
            want = {r.case_id for r in index.by_time if distance_m(q, r.shape) <= radius}
            assert want <= set(got)


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


def test_the_gap_of_two_boxes_is_never_more_than_the_distance_of_their_shapes() -> None:
    # What lets correlation skip an area's exact distance: the boxes' gap is a lower bound of it,
    # at any latitude, so a candidate skipped as farther than the limit is farther.
    import math

    from intake.domain.feeds.cap.area import CapCircle, CapPoint, circle_shape
    from intake.domain.nearby import distance_to, gap_m

    rng = random.Random(5)
    skipped = 0
    for _ in range(2_000):
        lat = rng.choice([rng.uniform(-80, 80), rng.uniform(31, 33), rng.uniform(-1, 1)])
        lon = rng.uniform(-170, 170)
        a = circle_shape(CapCircle(CapPoint(lat, lon), rng.uniform(0.05, 3)))
        b = rng.choice(
            [
                circle_shape(
                    CapCircle(
                        CapPoint(lat + rng.uniform(-0.1, 0.1), lon + rng.uniform(-0.1, 0.1)),
                        rng.uniform(0.05, 3),
                    )
                ),
                box(lon + rng.uniform(-0.1, 0), lat + rng.uniform(-0.1, 0), lon + rng.uniform(0, 0.1), lat),
            ]
        )
        exact = distance_m(a, b)
        assert gap_m(tuple(a.bounds), tuple(b.bounds)) <= exact + 1e-9
        r = RecentCase(uuid.uuid4(), "flood", b, datetime(2026, 1, 1, tzinfo=UTC), "emergency")
        limit = rng.uniform(0, 5_000)
        got = distance_to(a, tuple(a.bounds), r, limit)
        if got == math.inf:
            skipped += 1
            assert exact > limit
        else:
            assert got == exact
    assert skipped > 100  # the bound does skip
