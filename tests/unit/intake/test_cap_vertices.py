"""An alert's polygons are bounded in points before any geometry is computed (cap.too_many_vertices)."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from support.records import BEIJING, HOME, cap_alert

from intake.domain.errors import Rejected
from intake.domain.feeds.cap.alert import parse_alert
from intake.domain.feeds.cap.area import MAX_ALERT_VERTICES
from intake.domain.feeds.cap.reports import PreparedArea, reports_from_cap


def with_polygons(rings: list[int]) -> bytes:
    """A valid alert whose area holds simple (square-ish) rings of the given numbers of points."""
    doc = cap_alert("V-1", sent=datetime(2026, 5, 4, 9, 0, tzinfo=BEIJING)).decode()
    polygons = []
    for n in rings:
        step = 0.01 / n
        side = [(HOME[0] + i * step, HOME[1]) for i in range(n - 3)]
        ring = [*side, (HOME[0] + 0.01, HOME[1] + 0.01), (HOME[0], HOME[1] + 0.01), side[0]]
        polygons.append("<polygon>" + " ".join(f"{a:.8f},{b:.8f}" for a, b in ring) + "</polygon>")
    return re.sub(r"<circle>[^<]*</circle>", "".join(polygons), doc).encode()


def test_an_alert_at_the_bound_has_its_area() -> None:
    alert = parse_alert(with_polygons([MAX_ALERT_VERTICES // 2, MAX_ALERT_VERTICES // 2]))
    geometry = alert.geometry()
    assert geometry is not None and geometry.area > 0


def test_more_points_than_the_bound_are_refused_before_any_geometry() -> None:
    alert = parse_alert(with_polygons([MAX_ALERT_VERTICES // 2, MAX_ALERT_VERTICES // 2 + 1]))
    with pytest.raises(Rejected) as refused:
        alert.geometry()
    assert refused.value.reason == "cap.too_many_vertices"


def test_a_prepared_refusal_stands_for_the_area() -> None:
    raw = with_polygons([10])
    timeout = Rejected("cap.geometry_timeout", "over the limit")
    with pytest.raises(Rejected) as refused:
        reports_from_cap(raw, PreparedArea(error=timeout))
    assert refused.value is timeout
    [report] = reports_from_cap(raw, PreparedArea(geometry=None))
    assert report.area is None


async def test_a_few_circles_are_shaped_in_place_and_polygons_in_the_worker() -> None:
    from intake.cap_geometry import INLINE_CIRCLES, CapGeometry

    geometry = CapGeometry()
    try:
        circles = cap_alert("C-1", sent=datetime(2026, 5, 4, 9, 0, tzinfo=BEIJING))
        many = re.sub(
            r"<circle>[^<]*</circle>",
            "".join(
                f"<circle>{HOME[0] + i * 0.001},{HOME[1]} 0.5</circle>" for i in range(INLINE_CIRCLES + 1)
            ),
            circles.decode(),
        ).encode()
        polygons = with_polygons([10, 12])
        for raw, in_place in ((circles, True), (many, False), (polygons, False)):
            prepared = await geometry.area(raw)
            assert prepared is not None and prepared.error is None
            # The same shape wherever it is computed, and the alert as parsed travels with it.
            assert prepared.geometry is not None
            assert prepared.geometry.equals_exact(parse_alert(raw).geometry(), 0)
            assert prepared.alert == parse_alert(raw)
            assert (geometry._child is None) is in_place
        assert await geometry.area(b"<alert>not CAP</alert>") is None  # the pipeline refuses it
    finally:
        geometry.close()
