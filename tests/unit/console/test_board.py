"""The case board: open cases from cases.v1 and case.lifecycle.v1, SLA alerts, overdue deadlines."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console.domain.board import CaseBoard
from onegrid.auth import ScopeFilter

ROOT = Path(__file__).resolve().parents[3]
LIFECYCLE = json.loads((ROOT / "contracts/schemas/lifecycle-event.v1.json").read_text())["examples"]
CASE_EVENT = json.loads((ROOT / "contracts/schemas/case-event.v1.json").read_text())["examples"][0]
NOW = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
ALL = ScopeFilter(unrestricted=True)


def lifecycle(case_id: str, seq: int, to: str, **kw: Any) -> dict[str, Any]:
    ev = dict(LIFECYCLE[0], case_id=case_id, seq=seq, to_state=to, action=kw.pop("action", "dispatch"))
    ev.update(kw)
    return ev


def test_a_reported_case_is_open_with_its_place_and_no_personal_data() -> None:
    board = CaseBoard()
    board.case_event(CASE_EVENT)
    case = board.get(CASE_EVENT["case_id"], ALL)
    assert case is not None and case.state == "reported"
    assert case.point == (119.4129, 32.3942)
    assert case.title == CASE_EVENT["title"] and case.grid == "321003009001003"
    shown = json.dumps(board.points(NOW, ALL), ensure_ascii=False)
    assert "王建国" not in shown and "13805271234" not in shown


def test_lifecycle_moves_state_once_per_seq_and_ends_on_terminal() -> None:
    board = CaseBoard()
    cid = CASE_EVENT["case_id"]
    board.case_event(CASE_EVENT)
    board.lifecycle(lifecycle(cid, 2, "dispatched"))
    board.lifecycle(lifecycle(cid, 1, "registered"))  # older: ignored
    board.lifecycle(lifecycle(cid, 2, "acknowledged"))  # repeated seq: ignored
    case = board.get(cid, ALL)
    assert case is not None and case.state == "dispatched" and case.seq == 2
    assert case.point is not None  # lifecycle carries no point; the case event's stays
    board.lifecycle(lifecycle(cid, 3, "closed", action="close"))
    assert board.get(cid, ALL) is None and board.ended_state(cid, ALL) == "closed"
    board.case_event(CASE_EVENT)  # a late case event does not bring it back
    board.lifecycle(lifecycle(cid, 4, "reopened"))
    assert board.get(cid, ALL) is None
    assert board.summary(NOW, ALL)["open"] == 0


def test_cancelled_case_events_end_the_case() -> None:
    board = CaseBoard()
    board.case_event(CASE_EVENT)
    board.case_event(dict(CASE_EVENT, event_type="case.cancelled"))
    assert board.get(CASE_EVENT["case_id"], ALL) is None


def test_escalations_and_sla_reasons_are_alerts_and_passed_deadlines_overdue() -> None:
    board = CaseBoard(keep_alerts=2)
    esc = LIFECYCLE[1]  # the schema's escalation example: sla.acknowledge_overdue
    board.lifecycle(esc)
    board.lifecycle(lifecycle("c2", 1, "dispatched", reason="sla.resolve_overdue", action="reassign"))
    board.lifecycle(lifecycle("c3", 1, "dispatched", reason=None))
    board.lifecycle(lifecycle("c4", 1, "escalated", action="whistle", reason=None))
    s = board.summary(NOW, ALL)
    assert s["alert_total"] == 3
    assert [a["case_id"] for a in s["alerts"]] == ["c4", "c2"]  # newest first, two kept
    overdue = {c["case_id"]: c["overdue"] for c in s["overdue"]}
    # The escalation's deadlines (02:05 and 09:05) against 03:00: acknowledge_by has passed.
    assert overdue[esc["case_id"]] == ["acknowledge_by"]
    assert board.get(esc["case_id"], ALL).escalations == 1  # type: ignore[union-attr]
    assert s["by_state"]["escalated"] == 2


def test_events_without_a_case_id_change_nothing() -> None:
    board = CaseBoard()
    board.case_event({"event_type": "case.reported"})
    board.lifecycle({"seq": 1})
    assert board.summary(NOW, ALL)["open"] == 0


def test_an_operator_sees_only_the_cases_alerts_and_traces_of_its_scope() -> None:
    board = CaseBoard()
    board.case_event(CASE_EVENT)  # grid 321003009001003
    board.saw_trace("ab" * 16, CASE_EVENT["case_id"])
    other = dict(LIFECYCLE[1], case_id="c-gaoyou", seq=1)
    other["dimensions"] = dict(
        other["dimensions"], district="321084", street="321084001", community=None, grid=None
    )
    board.lifecycle(other)
    board.saw_trace("cd" * 16, "c-gaoyou")
    community = ScopeFilter(prefixes=("321003009001",))
    assert board.get(CASE_EVENT["case_id"], community) is not None
    assert board.get("c-gaoyou", community) is None and board.get("c-gaoyou", ALL) is not None
    assert [c["case_id"] for c in board.points(NOW, community)] == [CASE_EVENT["case_id"]]
    s = board.summary(NOW, community)
    assert s["open"] == 1 and s["alerts"] == [] and s["alert_total"] == 0
    assert board.summary(NOW, ALL)["alert_total"] == 1
    assert board.trace_visible("ab" * 16, community) and not board.trace_visible("cd" * 16, community)
    assert not board.trace_visible("ef" * 16, community)
    department = ScopeFilter(departments=(other["dimensions"]["department"],))
    assert board.get("c-gaoyou", department) is not None


def test_ended_cases_are_remembered_up_to_a_bound() -> None:
    board = CaseBoard(keep_ended=2)
    for i in range(3):
        board.lifecycle(lifecycle(f"c{i}", 1, "closed", action="close"))
    assert list(board.ended) == ["c1", "c2"]
