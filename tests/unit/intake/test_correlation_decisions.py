"""The case book decides exactly what a scan of every case with shapely's distances decides: the same
case joined, the same distance and time apart, for points and areas, across batches and pruning."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from shapely.geometry import Point, box, mapping
from shapely.geometry.base import BaseGeometry

from intake.domain.correlate import Pending, pending
from intake.domain.correlation import NEVER_MERGED, CaseBook, Decision
from intake.domain.identity import case_id_for
from intake.domain.nearby import RecentCase, distance_m
from intake.domain.report import Intent
from onegrid_contracts.case_event import decode_case_event
from tests.unit.dispatch.sample import case_event

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


@pytest.mark.parametrize("boxes_given", [False, True], ids=["boxes from shapely", "point boxes given"])
def test_decisions_equal_a_scan_with_shapely_distances(boxes_given: bool) -> None:
    """`boxes_given`: as intake decides, a point's box handed in from its coordinates (no shapely
    read), to the decision and to the recent case."""
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
            bounds = (
                (shape.x, shape.y, shape.x, shape.y) if boxes_given and isinstance(shape, Point) else None
            )
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
                bounds=bounds,
            )
            if want.event_type == "case.reported":
                want = Decision("case.reported", case_id_for(network, source_id))
            assert got == want, (batch, i)
            linked += got.event_type == "case.linked"
            assert got.case_id is not None
            recent = RecentCase(got.case_id, family, shape, at, network, bounds or tuple(shape.bounds))
            txn.record(f"{network}:{source_id}", got, recent, at)
            if got.event_type == "case.reported":
                seen.append(recent)
        txn.apply()
    assert 200 < linked < 1800  # the stream exercises both outcomes


@pytest.mark.parametrize("lat_lon", [(32.39, 119.41), (32.4123456789012, 119.0), (-0.0, 0.0)])
def test_a_drafted_point_reads_back_as_shapely_would_have_written_and_read_it(
    lat_lon: tuple[float, float],
) -> None:
    """The correlation stage gets a point's GeoJSON written from its coordinates and reads its box
    from them: the same JSON, shape and box as through shapely's mapping and shape."""
    lat, lon = lat_lon
    draft = decode_case_event(json.dumps(case_event()).encode())
    ours = pending(draft, Intent.REPORT, (), None, point=(lat, lon))
    theirs = pending(draft, Intent.REPORT, (), Point(lon, lat))
    assert msgspec.json.encode(ours) == msgspec.json.encode(theirs)
    back = msgspec.json.decode(msgspec.json.encode(ours), type=Pending)
    shape, bounds = back.located()
    assert shape is not None and shape.equals(Point(lon, lat)) and bounds == tuple(Point(lon, lat).bounds)
    assert dict(mapping(shape)) == dict(mapping(Point(lon, lat)))
