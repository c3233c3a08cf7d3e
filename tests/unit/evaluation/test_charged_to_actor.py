"""Each act is charged to the department that did it (eval.v2): case J (scripted_stream.py) is
returned by sifa and by gongan, reworked after chengguan's resolution failed verification, and
whistled at zhujian after it was reassigned there. The figures were worked out by hand."""

from __future__ import annotations

from datetime import date

import pytest
from support import scripted_stream as script

from evaluation.domain.case_facts import Policy, fold
from evaluation.domain.metrics import MetricKey, aggregate_all
from evaluation.domain.ranking import rank

from .test_scripted_figures import decoded, lifecycle_validator

POLICY = Policy()


def j_facts():  # type: ignore[no-untyped-def]
    return fold(decoded(script.charged_cases()["J"].events), POLICY)


def test_the_charged_stream_is_valid_lifecycle_events() -> None:
    v = lifecycle_validator()
    for body in script.charged_stream():
        assert not [e.message for e in v.iter_errors(body)], body["seq"]


def test_case_level_facts_stay_per_case() -> None:
    f = j_facts()
    got = (f.on_time, f.acknowledge_s, f.resolve_s, f.hops, f.returns, f.reworks, f.whistles)
    assert (*got, f.verifications, f.verifications_in_time) == script.CHARGED_CASE
    assert f.department == "zhujian" and f.departments == ("sifa", "gongan", "chengguan", "zhujian")


def test_each_stint_carries_what_its_department_did() -> None:
    stints = [
        (s.department, s.order_action, s.acknowledge_s, s.resolve_s, s.returns, s.whistles, s.reworks)
        for s in j_facts().stints
    ]
    assert stints == [
        ("sifa", "dispatch", 1800.0, None, 1, 0, 0),
        ("gongan", "reassign", 1200.0, None, 1, 0, 0),
        ("chengguan", "arbitrate", 1800.0, 18000.0, 0, 0, 1),
        ("zhujian", "reassign", 5400.0, 34200.0, 0, 1, 0),
    ]


@pytest.mark.parametrize(
    ("granularity", "start"), [("month", "2026-03-01"), ("week", "2026-03-02"), ("day", "2026-03-05")]
)
@pytest.mark.parametrize("department", sorted(script.CHARGED))
def test_department_rows_charge_each_figure_to_the_acting_department(
    department: str, granularity: str, start: str
) -> None:
    rows = aggregate_all([j_facts()], POLICY.definition())
    row = rows[MetricKey("department", department, granularity, date.fromisoformat(start))]
    expected = script.CHARGED[department]
    assert {c: getattr(row, c) for c in expected} == expected
    assert row.definition.startswith("eval.v2;")


def test_the_city_row_counts_the_case_once() -> None:
    row = aggregate_all([j_facts()], POLICY.definition())[MetricKey("all", "*", "month", date(2026, 3, 1))]
    assert {c: getattr(row, c) for c in script.CHARGED_CITY} == script.CHARGED_CITY


def test_the_departments_that_returned_rank_last_on_return_rate() -> None:
    rows = aggregate_all([j_facts()], POLICY.definition())
    month = [r for k, r in rows.items() if k.dimension == "department" and k.granularity == "month"]
    ranking = rank(month, "return_rate", min_cases=1)
    assert [(r.rank, r.value, r.figure) for r in ranking.ranked] == [
        (1, "chengguan", 0.0),
        (1, "zhujian", 0.0),
        (3, "gongan", 1.0),
        (3, "sifa", 1.0),
    ]
    whistles = rank(month, "whistle_rate", min_cases=1)
    assert [(r.value, r.figure, r.sample) for r in whistles.ranked][-1] == ("zhujian", 1.0, 1)
