"""Departments' and grid workers' answers: plans in order, silence, returns at the configured rate,
and bodies that dispatch and the contract accept."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import numpy as np
import pytest

from dispatch.domain.facts import decode_feedback
from simulators.domain.answers import DEMO_MARK, Behaviour, Department, feedback, grid_action

from .conftest import validator

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def order(department: str = "sifa", kind: str = "assign", title: str = "楼上漏水") -> dict:
    return {
        "order_id": str(uuid.uuid4()),
        "case_id": str(uuid.uuid4()),
        "department": department,
        "hop": 1,
        "kind": kind,
        "case": {"title": title},
    }


def test_a_department_acknowledges_progresses_and_resolves_with_evidence() -> None:
    schema = validator("feedback.v1.json")
    o = order()
    steps = Department(Behaviour(return_rate=0.0)).plan(o, np.random.default_rng(1))
    assert [s.kind for s in steps] == ["acknowledge", "progress", "resolve"]
    assert steps[0].after_s < steps[1].after_s < steps[2].after_s
    for s in steps:
        body = feedback(o, s, NOW)
        schema.validate(body)
        fb = decode_feedback(json.dumps(body).encode())
        assert (str(fb.order_id), fb.kind, fb.department) == (o["order_id"], s.kind, "sifa")
    assert len(feedback(o, steps[2], NOW)["evidence"]) == 1


@pytest.mark.parametrize("title", ["占道经营", DEMO_MARK + "楼上漏水"])
def test_silent_departments_and_demo_cases_get_no_answer(title: str) -> None:
    d = Department(Behaviour(silent=frozenset({"chengguan"})))
    rng = np.random.default_rng(2)
    assert d.plan(order("chengguan", title=title), rng) == []
    assert (d.plan(order("sifa", title=title), rng) == []) == title.startswith(DEMO_MARK)


def test_returns_come_at_the_configured_rate_and_never_for_a_whistle() -> None:
    schema = validator("feedback.v1.json")
    d, rng = Department(Behaviour(return_rate=0.2)), np.random.default_rng(3)
    plans = [d.plan(order(), rng) for _ in range(2000)]
    returned = [p for p in plans if p[0].kind == "return"]
    assert 320 <= len(returned) <= 480  # 400 expected; binomial sd 18
    o = order()
    body = feedback(o, returned[0][0], NOW)
    schema.validate(body)
    assert body["return_reason"]["suggested_department"] not in (None, "sifa")
    whistles = [d.plan(order(kind="whistle"), rng) for _ in range(500)]
    assert all(p[0].kind == "acknowledge" for p in whistles)


def event(to_state: str, *, tier: str = "grid", department: str | None = None) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "case_id": str(uuid.uuid4()),
        "to_state": to_state,
        "dimensions": {"grid": "321003009001004", "tier": tier, "department": department},
    }


def test_the_grid_worker_handles_small_cases_and_checks_resolved_ones() -> None:
    rng = np.random.default_rng(4)
    small = grid_action(event("registered"), rng, rework_rate=0.1)
    assert small is not None and small.action == "self_handle" and small.body["evidence"]
    assert grid_action(event("registered", tier="street", department="sifa"), rng, rework_rate=0.1) is None
    assert grid_action(event("dispatched"), rng, rework_rate=0.1) is None
    checks = [grid_action(event("resolved"), rng, rework_rate=0.25) for _ in range(2000)]
    reworks = sum(1 for c in checks if c is not None and c.action == "rework")
    assert all(c is not None and c.action in ("verify", "rework") for c in checks)
    assert 420 <= reworks <= 580
    back = grid_action(event("returned", tier="street"), rng, rework_rate=0.1)
    assert back is not None and back.action == "arbitrate"
    e = event("resolved")
    a1, a2 = grid_action(e, rng, rework_rate=0.0), grid_action(e, rng, rework_rate=0.0)
    assert a1 is not None and a2 is not None and a1.idempotency_key == a2.idempotency_key
