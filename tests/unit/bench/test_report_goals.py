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


def test_each_feed_is_held_to_its_own_share_of_the_passthrough() -> None:
    def feed(ratio: float) -> dict[str, object]:
        return {"ratio_to_passthrough_tx": ratio, "intake": {"per_s": 1.0}, "passthrough_tx": {"per_s": 2.0}}

    ratios = {"hj212": 0.74, "open311": 0.76, "party": 0.5, "safety": 0.49, "cap": 0.36}
    goals = report.goals({"intake": {"feeds": {f: feed(r) for f, r in ratios.items()}}})
    met = {g["goal"].split()[1]: (g["goal"].split()[3], g["met"]) for g in goals}
    assert met == {
        "hj212": ("0.75", False),
        "open311": ("0.75", True),
        "party": ("0.5", True),
        "safety": ("0.5", False),
        "cap": ("0.35", True),
    }
