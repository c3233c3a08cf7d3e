"""Evaluation folds what dispatch really emits: a case driven through dispatch's own lifecycle
(register, acknowledge, suspend for a day, resume, resolve late, verify, reopen, close again) gives
lifecycle events our decoder accepts and facts that follow the rules, where dispatch's own `on_time`
flag (written at closing, ignoring paused time) says otherwise."""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType

from dispatch.domain.case import Case, Outcome
from dispatch.domain.facts import Actor, decode_case
from dispatch.domain.lifecycle import Command, Lifecycle, Policy
from dispatch.domain.messages import lifecycle_event
from dispatch.domain.routing import Directory
from dispatch.domain.states import Action
from evaluation.domain.case_facts import Policy as EvalPolicy
from evaluation.domain.case_facts import fold
from onegrid_contracts.lifecycle import LifecycleEvent, decode_lifecycle

ROOT = Path(__file__).resolve().parents[3]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"dispatch_{name}", ROOT / f"tests/unit/dispatch/{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sample = _load("sample")
STAFF = Actor(kind="staff", id="hj-supervision/0003", display="张三")
DEPT = Actor(kind="department", id="hj-urban-mgmt", display="邗江区城市管理局")


class Drive:
    def __init__(self) -> None:
        self.lc = Lifecycle(
            Directory(sample.as_records(sample.registry_records())), Policy(reopen_window_s=7 * 86400)
        )
        self.events: list[dict[str, object]] = []
        self.case: Case | None = None

    def _take(self, out: Outcome) -> None:
        self.events += [
            lifecycle_event(snap, t) for snap, t in zip(out.snapshots, out.transitions, strict=True)
        ]
        self.case = out.case

    def register(self, at: datetime) -> None:
        self._take(self.lc.register(decode_case(sample.case_bytes(tier="street", level=4)), at))

    def do(self, action: Action, at: datetime, **kw: object) -> None:
        assert self.case is not None
        order = self.case.orders[0].order_id if self.case.orders else None
        actor = STAFF if action in (Action.VERIFY, Action.REOPEN) else DEPT
        cmd = Command(
            action=action, actor=actor, order_id=order, department=self.case.department, evidence=1, **kw
        )  # type: ignore[arg-type]
        self._take(self.lc.decide(self.case, cmd, at))

    def decoded(self) -> list[LifecycleEvent]:
        return [decode_lifecycle(json.dumps(e, ensure_ascii=False).encode()) for e in self.events]


def test_a_day_suspended_keeps_a_late_looking_closure_on_time_and_a_reopen_takes_it_away() -> None:
    d = Drive()
    t0 = datetime.fromisoformat("2026-03-02T01:00:00+00:00")
    d.register(t0)
    first_due = datetime.fromisoformat(str(d.events[0]["deadlines"]["resolve_by"]).replace("Z", "+00:00"))  # type: ignore[index]
    sla = first_due - t0
    d.do(Action.ACKNOWLEDGE, t0 + timedelta(minutes=10))
    d.do(Action.SUSPEND, t0 + timedelta(hours=1), reason="suspend.awaiting_weather")
    d.do(Action.RESUME, t0 + timedelta(hours=25))
    assert sla == timedelta(hours=24)
    closed_at = t0 + timedelta(hours=27)  # three hours past the first deadline, a day paused
    d.do(Action.RESOLVE, t0 + timedelta(hours=26))
    d.do(Action.VERIFY, closed_at)
    assert d.events[-1]["to_state"] == "closed" and d.events[-1]["on_time"] is False  # dispatch's flag

    facts = fold(d.decoded(), EvalPolicy())
    assert facts.complete and facts.state == "closed"
    assert (facts.acknowledge_s, facts.paused_s, facts.hops) == (600.0, 86400.0, 1)
    assert facts.resolve_due_at == first_due + timedelta(hours=24)
    assert facts.resolve_s == 2 * 3600.0  # 26 h after registration, 24 h of it paused
    assert facts.on_time and facts.department == "hj-urban-mgmt"

    d.do(Action.REOPEN, closed_at + timedelta(days=2))
    reopened = fold(d.decoded(), EvalPolicy())
    assert (reopened.reopens, reopened.reopens_in_window, reopened.on_time) == (1, 1, False)
    assert reopened.hops == 2  # the reopen dispatches the case again


def test_an_overdue_verification_handed_up_is_still_timed_from_resolving() -> None:
    # Resolved, nobody verifies within the day: the verification deadline fires (resolved -> resolved,
    # to the district); the check made two hours later is 26 h after resolving, not in time.
    d = Drive()
    t0 = datetime.fromisoformat("2026-03-02T01:00:00+00:00")
    d.register(t0)
    d.do(Action.RESOLVE, t0 + timedelta(hours=1))
    assert d.case is not None
    (verify,) = d.case.deadlines
    d._take(d.lc.fire(d.case, verify.deadline_id, verify.due_at))
    assert d.events[-1]["action"] == "escalate_verification" and d.events[-1]["to_state"] == "resolved"
    d.do(Action.VERIFY, verify.due_at + timedelta(hours=2))
    facts = fold(d.decoded(), EvalPolicy())
    assert facts.state == "closed"
    assert (facts.verifications, facts.verifications_in_time) == (1, 0)
    assert sum(s.resolutions for s in facts.stints) == 1, "handing the check up is not another resolve"
