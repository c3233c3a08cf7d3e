"""The case book decides exactly what a scan of every case with shapely's distances decides: the same
case joined, the same distance and time apart, for points and areas, across batches and pruning."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from shapely.geometry import Point, box
from shapely.geometry.base import BaseGeometry

from intake.domain.correlation import NEVER_MERGED, CaseBook, Decision
from intake.domain.identity import case_id_for
from intake.domain.nearby import RecentCase, distance_m
from intake.domain.report import Intent

T0 = datetime(2026, 11, 30, tzinfo=UTC)
NETWORKS = ("party", "safety", "emergency", "open311", "env")


def _expected(
    book: CaseBook, seen: list[RecentCase], family: str, shape: BaseGeometry, at: datetime
) -> Decision:
    """What the decision must be, from every case reported so far (no index, no cached boxes)."""
    w = book.window(family)
    latest = max((r.at for r in seen), default=None)
    best: tuple[float, str, RecentCase, float] | None = None
    for r in seen:
        if r.family != family or r.network in NEVER_MERGED:
            continue
        if latest is not None and r.at < latest - w.within:
            continue
        dt = abs((at - r.at).total_seconds())
        if dt > w.within.total_seconds():
            continue
        d = distance_m(shape, r.shape)
        if d <= w.radius_m and (best is None or (d, str(r.case_id)) < (best[0], best[1])):
            best = (d, str(r.case_id), r, dt)
    if best is None:
        return Decision("case.reported", None)
    d, _, r, dt = best
    return Decision(
        "case.linked", r.case_id, r.case_id, "correlation.nearby_same_family", round(d, 1), round(dt, 1)
    )


def _shape(rng: random.Random) -> BaseGeometry:
    lon, lat = 119.41 + rng.uniform(-0.03, 0.03), 32.39 + rng.uniform(-0.03, 0.03)
    if rng.random() < 0.9:
        return Point(lon, lat)
    return box(lon, lat, lon + rng.uniform(0, 0.02), lat + rng.uniform(0, 0.02))


def test_decisions_equal_a_scan_with_shapely_distances() -> None:
    rng = random.Random(16)
    book = CaseBook()
    seen: list[RecentCase] = []
    linked = 0
    for batch in range(40):
        txn = book.begin()
        for i in range(50):
            family = rng.choice(("fire", "flood", "other"))
            network = rng.choice(NETWORKS)
            source_id = f"{batch}-{i}"
            shape = _shape(rng)
            at = T0 + timedelta(minutes=batch * 20 + i + rng.uniform(-30, 30))
            want = _expected(book, seen, family, shape, at)
            if network in NEVER_MERGED:
                want = Decision("case.reported", None)
            got = txn.decide(
                source_key=f"{network}:{source_id}",
                intent=Intent.REPORT,
                refers_to=(),
                family=family,
                shape=shape,
                at=at,
                network=network,
                source_id=source_id,
            )
            if want.event_type == "case.reported":
                want = Decision("case.reported", case_id_for(network, source_id))
            assert got == want, (batch, i)
            linked += got.event_type == "case.linked"
            assert got.case_id is not None
            recent = RecentCase(got.case_id, family, shape, at, network)
            txn.record(f"{network}:{source_id}", got, recent, at)
            if got.event_type == "case.reported":
                seen.append(recent)
        txn.apply()
    assert 200 < linked < 1800  # the stream exercises both outcomes
