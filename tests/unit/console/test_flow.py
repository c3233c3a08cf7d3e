"""Throughput from end-offset samples and lag from committed offsets."""

from __future__ import annotations

import pytest

from console.domain.flow import Lag, Throughput, group_totals, lag_rows, via


def test_rate_is_growth_over_the_window() -> None:
    tp = Throughput(window_s=10)
    tp.observe(0.0, {("a", 0): 100, ("a", 1): 50, ("b", 0): 7})
    tp.observe(2.0, {("a", 0): 110, ("a", 1): 60, ("b", 0): 7})
    rows = {r.topic: r for r in tp.rates()}
    assert rows["a"].per_second == pytest.approx(10.0)
    assert rows["a"].end_offsets == 170 and rows["a"].partitions == 2
    assert rows["b"].per_second == 0.0
    assert [r.topic for r in tp.rates()] == ["a", "b"]  # busiest first


def test_old_samples_leave_the_window_and_quiet_topics_go_to_zero() -> None:
    tp = Throughput(window_s=4)
    tp.observe(0.0, {("a", 0): 0})
    tp.observe(2.0, {("a", 0): 40})
    for at in (4.0, 6.0, 8.0, 10.0):
        tp.observe(at, {("a", 0): 40})
    assert tp.rates()[0].per_second == 0.0
    tp.observe(12.0, {("a", 0): 48})
    assert tp.rates()[0].per_second == pytest.approx(8 / 4)


def test_one_sample_new_partitions_and_shrunk_offsets_count_no_growth() -> None:
    tp = Throughput(window_s=10)
    assert tp.rates() == []
    tp.observe(1.0, {("a", 0): 5})
    assert tp.rates()[0].per_second == 0.0
    tp.observe(2.0, {("a", 0): 3, ("a", 1): 100})  # recreated topic, new partition
    assert tp.rates()[0].per_second == 0.0
    tp.observe(1.5, {("a", 0): 1000})  # out of order: ignored
    assert tp.rates()[0].end_offsets == 103


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Throughput(window_s=0)


def test_lag_rows_and_totals() -> None:
    committed = {"g1": {("a", 0): 90, ("a", 1): None}, "g2": {("b", 0): 5, ("gone", 0): 1}}
    ends = {("a", 0): 100, ("a", 1): 20, ("b", 0): 5}
    rows = lag_rows(committed, ends)
    assert rows == [
        Lag("g1", "a", 0, 90, 100),
        Lag("g1", "a", 1, None, 20),
        Lag("g2", "b", 0, 5, 5),
    ]
    assert [r.lag for r in rows] == [10, 20, 0]
    assert group_totals(rows) == {"g1": 30, "g2": 0}
    assert rows[1].to_json()["committed"] is None


def test_via_names_the_bridge_a_legacy_record_came_through() -> None:
    assert via({"ce_bridge": "hj212", "ce_source": "/onegrid/bridges/hj212/MN1"}) == "bridge hj212"
    assert via({"ce_source": "/onegrid/bridges/safety-push/legacy:gw"}) == "bridge safety-push"
    assert via({"ce_source": "/onegrid/simulators/cap"}) == "/onegrid/simulators/cap"  # not through a bridge
    assert via({}) is None
