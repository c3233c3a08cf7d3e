"""The goals table of a run that ran only some sections (`make bench ARGS="--only dispatch"`)."""

from __future__ import annotations

from bench import report


def test_a_goal_of_a_section_not_run_is_left_out_not_listed_as_missed() -> None:
    goals = report.goals({"dispatch": {"per_s": 2000.0}})
    assert [g["goal"] for g in goals] == ["dispatch desk ≥ 3,000 cases/s"]
    assert goals[0]["met"] is False


def test_a_goal_of_a_section_that_ran_and_failed_is_not_measured() -> None:
    goals = report.goals({"dispatch": {"error": "RuntimeError: PostgreSQL went away"}})
    assert len(goals) == 1 and "not measured" in goals[0]["goal"] and goals[0]["met"] is False
