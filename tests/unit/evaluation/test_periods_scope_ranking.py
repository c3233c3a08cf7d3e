"""Periods in the city's time, scopes by division prefix, rankings that leave small units out, and
percentiles as PostgreSQL's percentile_disc computes them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import msgspec
import pytest

from evaluation.domain.metrics import MetricKey, MetricRow, aggregate, percentile_disc
from evaluation.domain.periods import instant, is_period_start, period_end, period_start
from evaluation.domain.ranking import rank
from evaluation.domain.scope import CITY, Scope, ScopeError

from .test_scripted_figures import facts_by_name


@pytest.mark.parametrize(
    ("utc", "day", "week", "month"),
    [
        # 15:59Z is 23:59 local on the 1st; 16:00Z is midnight of the 2nd (a Monday)
        (datetime(2026, 3, 1, 15, 59, tzinfo=UTC), "2026-03-01", "2026-02-23", "2026-03-01"),
        (datetime(2026, 3, 1, 16, 0, tzinfo=UTC), "2026-03-02", "2026-03-02", "2026-03-01"),
        (datetime(2026, 2, 28, 16, 0, tzinfo=UTC), "2026-03-01", "2026-02-23", "2026-03-01"),
        (datetime(2025, 12, 31, 16, 30, tzinfo=UTC), "2026-01-01", "2025-12-29", "2026-01-01"),
    ],
)
def test_periods_are_local_calendar_periods(utc: datetime, day: str, week: str, month: str) -> None:
    assert [period_start(utc, g).isoformat() for g in ("day", "week", "month")] == [day, week, month]


def test_period_bounds() -> None:
    assert period_end(date(2026, 2, 1), "month") == date(2026, 3, 1)
    assert period_end(date(2025, 12, 1), "month") == date(2026, 1, 1)
    assert period_end(date(2026, 3, 2), "week") == date(2026, 3, 9)
    assert instant(date(2026, 3, 2)) == datetime(2026, 3, 1, 16, tzinfo=UTC)
    assert is_period_start(date(2026, 3, 2), "week") and not is_period_start(date(2026, 3, 3), "week")
    assert is_period_start(date(2026, 3, 1), "month") and not is_period_start(date(2026, 3, 2), "month")


def test_percentile_disc_picks_a_member_of_the_sample() -> None:
    assert percentile_disc([], 0.5) is None
    assert percentile_disc([7.0], 0.9) == 7.0
    assert percentile_disc([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0  # the lower middle, never 2.5
    assert percentile_disc(range(1, 11), 0.9) == 9
    assert percentile_disc(range(1, 12), 0.9) == 10


def test_scopes_see_their_own_division_and_below() -> None:
    street = Scope.parse("street:321003009")
    assert street.admits("street", "321003009") and street.admits("grid", "321003009001001")
    assert not street.admits("street", "321003010") and not street.admits("grid", "321003010001001")
    assert not street.admits("district", "321003") and not street.admits("all", "*")
    assert not street.admits("department", "chengguan") and not street.admits("network", "env")
    district = Scope.parse("district:321003")
    assert district.admits("district", "321003") and district.admits("street", "321003010")
    dept = Scope.parse("department:chengguan")
    assert dept.admits("department", "chengguan") and not dept.admits("department", "shichang")
    assert not dept.admits("grid", "321003009001001")
    assert CITY.admits("all", "*") and Scope.parse(None) == CITY == Scope.parse("city")


def test_scope_of_a_case() -> None:
    facts = facts_by_name()
    assert Scope.parse("street:321003009").admits_case(facts["A"])
    assert not Scope.parse("street:321003010").admits_case(facts["A"])
    assert Scope.parse("department:shengtai").admits_case(facts["C"])  # it held the case once
    assert not Scope.parse("department:shengtai").admits_case(facts["A"])


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("street:32100300", "street code"),
        ("village:1", "scope kind"),
        ("department:Bad Code", "department code"),
    ],
)
def test_a_malformed_scope_is_refused_naming_the_problem(text: str, needle: str) -> None:
    with pytest.raises(ScopeError, match=needle):
        Scope.parse(text)


def row(value: str, registered: int, closed: int, on_time: int, *, returned: int = 0) -> MetricRow:
    base = aggregate(MetricKey("department", value, "month", date(2026, 3, 1)), [facts_by_name()["A"]], "d")
    return msgspec.structs.replace(
        base,
        registered=registered,
        closable=registered,
        closed=closed,
        on_time_closed=on_time,
        on_time_closure_rate=on_time / registered,
        dispatched=registered,
        return_rate=returned / registered,
    )


def test_ranking_by_on_time_closure_leaves_small_units_out_and_shares_ranks_on_ties() -> None:
    rows = [
        row("a", 30, 30, 27),
        row("b", 40, 40, 36),
        row("c", 20, 20, 10),
        row("tiny", 3, 3, 3),
        row("none", 50, 50, 50),
        row("d", 25, 25, 24),
    ]
    r = rank(rows, "on_time_closure_rate", min_cases=20)
    assert r.higher_is_better
    assert [(x.rank, x.value, x.sample) for x in r.ranked] == [
        (1, "d", 25),
        (2, "a", 30),
        (2, "b", 40),
        (4, "c", 20),
    ]
    assert [(u.value, u.sample, u.why) for u in r.unranked] == [("tiny", 3, "insufficient_sample")]


def test_rates_of_trouble_rank_the_smallest_first() -> None:
    rows = [row("a", 20, 20, 20, returned=5), row("b", 20, 20, 20, returned=1)]
    r = rank(rows, "return_rate", min_cases=20)
    assert not r.higher_is_better and [x.value for x in r.ranked] == ["b", "a"]


def test_a_metric_that_cannot_be_ranked_is_refused() -> None:
    with pytest.raises(ValueError, match="metric must be one of"):
        rank([], "registered", 1)


def test_only_this_citys_code_is_the_whole_city() -> None:
    """Before: any xxxx00 code (another city's operator, 110100) read the whole city's figures."""
    from evaluation.domain.scope import CITY, entitled

    assert entitled(("321000",), (), unrestricted=False) == [CITY]
    assert entitled(("320000",), (), unrestricted=False) == [CITY]
    assert entitled(("110100",), (), unrestricted=False) == []
    assert entitled(("110000",), (), unrestricted=False) == []
    assert [str(s) for s in entitled(("321003",), (), unrestricted=False)] == ["district:321003"]
