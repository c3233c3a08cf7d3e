"""Registry versions as slowly changing dimensions (validity intervals, personal fields masked for
roles without personal-data rights) and zero rows for departments and grids without cases."""

from __future__ import annotations

from datetime import UTC, date, datetime

from evaluation.domain.dimensions import intervals, rows, version_of
from evaluation.domain.metrics import MetricKey, aggregate_all, zero_rows

from .test_scripted_figures import POLICY, facts_by_name


def staff(revision: int, updated_at: str, grid: str) -> dict[str, object]:
    return {
        "kind": "staff",
        "code": "hj-grid/0007",
        "revision": revision,
        "updated_at": updated_at,
        "name": "王小明",
        "active": True,
        "role": "grid_worker",
        "phone": "13800000000",
        "grid_codes": [grid],
        "department": None,
    }


def test_versions_get_validity_intervals_and_personal_fields_are_masked() -> None:
    v1 = version_of(staff(1, "2026-01-01T00:00:00Z", "321003009001001"))
    v2 = version_of(staff(2, "2026-03-03T16:00:00Z", "321003009001002"))
    spans = intervals([v2, v1])
    masked = rows("staff", spans, personal_data=False)
    assert [(r["revision"], r["valid_from"], r["valid_to"], r["current"]) for r in masked] == [
        (1, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 3, 16, tzinfo=UTC), False),
        (2, datetime(2026, 3, 3, 16, tzinfo=UTC), None, True),
    ]
    assert {(r["name"], r["phone"]) for r in masked} == {("王*", None)}
    assert masked[1]["version"] == "2026-03-03T16:00:00Z#2"  # as lifecycle events carry grid_version
    assert masked[0]["grid_codes"] == ("321003009001001",)
    full = rows("staff", spans, personal_data=True)
    assert {(r["name"], r["phone"]) for r in full} == {("王小明", "13800000000")}


def test_units_without_cases_get_zero_rows_only_while_valid() -> None:
    facts = list(facts_by_name().values())
    present = aggregate_all(facts, POLICY.definition())
    units = {
        "department": [
            # chengguan has cases on the 2nd and 3rd, none on the 4th
            ("chengguan", datetime(2025, 1, 1, tzinfo=UTC), None),
            ("sifa", datetime(2025, 1, 1, tzinfo=UTC), None),
            # created on 4 March 08:00 local: valid on the 4th, not on the 2nd or 3rd
            ("minzheng", datetime(2026, 3, 4, 0, tzinfo=UTC), None),
        ],
        "grid": [("321003010009009", datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 3, 2, 16, tzinfo=UTC))],
    }
    periods = [("day", date(2026, 3, d)) for d in (2, 3, 4)] + [("month", date(2026, 3, 1))]
    extra = zero_rows(units, periods, set(present), POLICY.definition())
    got = sorted((r.dimension, r.value, r.granularity, r.period_start.day) for r in extra)
    assert got == [
        ("department", "chengguan", "day", 4),
        ("department", "minzheng", "day", 4),
        ("department", "minzheng", "month", 1),
        ("department", "sifa", "day", 2),
        ("department", "sifa", "day", 3),
        ("department", "sifa", "day", 4),
        ("department", "sifa", "month", 1),
        ("grid", "321003010009009", "day", 2),  # until 3 March 00:00 local
        ("grid", "321003010009009", "month", 1),
    ]
    zero = next(r for r in extra if r.value == "sifa" and r.granularity == "month")
    assert (zero.registered, zero.dispatched, zero.returned, zero.closure_rate, zero.return_rate) == (
        0,
        0,
        0,
        None,
        None,
    )
    assert MetricKey("department", "chengguan", "month", date(2026, 3, 1)) in present
