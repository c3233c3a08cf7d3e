"""Random case.lifecycle.v1 streams for property tests of evaluation: cases registered around a day,
week and month boundary, dispatched, reassigned and arbitrated between departments, returned,
whistled at, resolved, reworked, verified, closed, reopened, suspended, cancelled and merged, some
reclassified (another grid, street, network or category) on the way. Delivered in random batches,
out of order and with repeats, so a case can move between units and periods from batch to batch (its
registration arriving after a later event moves it to the registration's period).
"""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from onegrid_contracts.lifecycle import LifecycleEvent, decode_lifecycle

NS = uuid.UUID("0b9f3c2e-6a51-4c1d-9e7a-31d4f0a8c6b2")
# 2026-03-31 16:00Z is 2026-04-01 00:00 in the city (UTC+8): a day, week-day and month boundary.
START = datetime(2026, 3, 30, 4, tzinfo=UTC)
DEPARTMENTS = ("chengguan", "shengtai", "zhujian")
GRIDS = (("321003009", "321003009001001"), ("321003009", "321003009002001"), ("321003010", "321003010001001"))
NETWORKS = ("open311", "party")
CATEGORIES = ("city.garbage", "env.noise.exceedance")
RULES = ("7", "8", None, "")
STATE_OF = {
    "dispatch": "dispatched",
    "reassign": "dispatched",
    "arbitrate": "dispatched",
    "acknowledge": "acknowledged",
    "progress": "in_progress",
    "return": "returned",
    "escalate": "escalated",
    "whistle": "escalated",
    "resolve": "resolved",
    "self_handle": "resolved",
    "verify": "verified",
    "rework": "in_progress",
    "close": "closed",
    "reopen": "reopened",
    "suspend": "suspended",
    "resume": "in_progress",
    "cancel": "cancelled",
    "merge": "merged",
}
ACTIONS = tuple(STATE_OF)


@st.composite
def case_events(draw: st.DrawFn, index: int) -> list[dict[str, Any]]:
    """The event bodies of one case, in seq order."""
    case_id = str(uuid.uuid5(NS, f"case/{index}"))
    at = START + timedelta(minutes=draw(st.integers(0, 4 * 24 * 60)))
    street, grid = draw(st.sampled_from(GRIDS))
    grid = grid if draw(st.booleans()) else None  # a case outside any grid counts under `none`
    network, category = draw(st.sampled_from(NETWORKS)), draw(st.sampled_from(CATEGORIES))
    department: str | None = None
    rule = draw(st.sampled_from(RULES))
    state = "registered"
    steps = draw(st.lists(st.sampled_from(ACTIONS), max_size=8))
    bodies = [_body(case_id, 1, None, state, "register", at, street, grid, network, category, None, rule)]
    for action in steps:
        at += timedelta(minutes=draw(st.integers(1, 3 * 24 * 60)))
        if action in ("dispatch", "reassign", "arbitrate"):
            department = draw(st.sampled_from(DEPARTMENTS))
        if draw(st.integers(0, 9)) == 0:  # reclassified: another grid, network or category
            street, grid = draw(st.sampled_from(GRIDS))
            department = department if draw(st.booleans()) else draw(st.sampled_from(DEPARTMENTS))
            network, category = draw(st.sampled_from(NETWORKS)), draw(st.sampled_from(CATEGORIES))
        rule = draw(st.sampled_from(RULES)) if draw(st.integers(0, 4)) == 0 else rule
        to = STATE_OF[action]
        bodies.append(
            _body(
                case_id,
                len(bodies) + 1,
                state,
                to,
                action,
                at,
                street,
                grid,
                network,
                category,
                department,
                rule,
            )
        )
        state = to
    return bodies


def _body(
    case_id: str,
    seq: int,
    from_state: str | None,
    to_state: str,
    action: str,
    at: datetime,
    street: str,
    grid: str | None,
    network: str,
    category: str,
    department: str | None,
    rule: str | None,
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid5(NS, f"{case_id}/{seq}")),
        "case_id": case_id,
        "seq": seq,
        "from_state": from_state,
        "to_state": to_state,
        "action": action,
        "actor": {"kind": "system", "id": "dispatch", "display": "系统"},
        "reason": None,
        "at": at.isoformat().replace("+00:00", "Z"),
        "deadlines": {
            "acknowledge_by": None,
            "resolve_by": (at + timedelta(hours=24)).isoformat().replace("+00:00", "Z") if seq == 1 else None,
        },
        "dimensions": {
            "network": network,
            "category_code": category,
            "severity_level": 3,
            "district": street[:6],
            "street": street,
            "community": grid[:12] if grid else None,
            "grid": grid,
            "department": department,
            "hops": 0,
            "tier": "grid",
        },
        "versions": {
            "rule_version": rule,
            "taxonomy_version": "2026.1" if seq % 2 else None,
            "grid_version": f"2026-02-28T16:00:00Z#{seq % 3}",
        },
    }


@st.composite
def batches(draw: st.DrawFn, max_cases: int = 12) -> list[list[dict[str, Any]]]:
    """Every event of up to `max_cases` cases, shuffled, some repeated, cut into batches."""
    n = draw(st.integers(1, max_cases))
    events = [b for i in range(n) for b in draw(case_events(i))]
    repeats = draw(st.lists(st.sampled_from(events), max_size=5))
    stream = draw(st.permutations(events + repeats))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=6)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds) if a < b]


def decoded(body: dict[str, Any]) -> LifecycleEvent:
    return decode_lifecycle(json.dumps(body).encode())
