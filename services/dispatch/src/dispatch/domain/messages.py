"""The JSON bodies dispatch emits: lifecycle events (lifecycle-event.v1.json) and dispatch orders
(dispatch-order.v1.json). Built from the case after the transition, so an event states the deadlines
and dimensions in force once it happened. No personal data: reporter fields are never decoded, and
actor display names are masked (`李*`)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import msgspec

from dispatch.domain.case import Case, Order, Transition
from dispatch.domain.facts import Actor

LIFECYCLE_CE_TYPE = "cn.onegrid.case.transitioned.v1"
ORDER_CE_TYPE = "cn.onegrid.dispatch.order.v1"


def utc(t: datetime | None) -> str | None:
    """RFC 3339 with `Z`, as the contracts' utc_time requires."""
    return None if t is None else _utc_text(t)


@functools.lru_cache(maxsize=4096)
def _utc_text(t: datetime) -> str:
    # Cached: a batch's events share its instant and its cases' deadlines (equal instants are equal
    # keys whatever their zone, and give the same text).
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def masked(actor: Actor) -> dict[str, str]:
    display = actor.display
    if actor.kind in ("staff", "citizen") and display:
        display = display[0] + "*"
    return {"kind": actor.kind, "id": actor.id, "display": display}


def lifecycle_event(case: Case, t: Transition) -> dict[str, Any]:
    """The lifecycle event of transition `t`; `case` is the case right after it."""
    f = case.facts
    ack, res = case.deadline("acknowledge"), case.deadline("resolve")
    resolved = t.to_state.value == "resolved"
    routing = case.routing
    versions = routing.versions if routing else None
    event: dict[str, Any] = {
        "event_id": t.event_id,
        "case_id": t.case_id,
        "seq": t.seq,
        "from_state": t.from_state.value if t.from_state else None,
        "to_state": t.to_state.value,
        "action": t.action.value,
        "actor": masked(t.actor),
        "reason": t.reason,
        "at": utc(t.at),
        "deadlines": {
            "acknowledge_by": utc(ack.due_at if ack else None),
            "resolve_by": utc(res.due_at if res else None),
            # The calendar they were computed on ("24x7" or the working-day calendar's version).
            "calendar_version": next((d.calendar_version for d in (res, ack) if d is not None), None)
            or (case.verify_calendar_version if resolved else None),
            # 核查结案: a resolved case states when its verification is due.
            "verify_by": utc(case.verify_by) if resolved else None,
        },
        "dimensions": {
            "network": f.network,
            "category_code": f.category.code,
            "severity_level": f.severity.level,
            "district": f.division.district,
            "street": f.division.street,
            "community": f.division.community,
            "grid": f.division.grid,
            "department": case.department,
            "hops": case.counters.hops,
            "tier": case.tier,
        },
        "versions": {
            "rule_version": versions.rule_version if versions else None,
            "taxonomy_version": versions.taxonomy_version if versions else f.category.taxonomy_version,
            "grid_version": versions.grid_version if versions else None,
        },
        "deadline_id": t.deadline_id,
        "counters": msgspec.to_builtins(case.counters),
    }
    if t.evidence:
        event["evidence"] = list(t.evidence)
    if t.to_state.value == "closed":
        on_time = case.first_resolve_by is not None and t.at <= case.first_resolve_by
        event["on_time"] = on_time and case.counters.reopens == 0
    return event


def dispatch_order(case: Case, order: Order) -> dict[str, Any]:
    f = case.facts
    routing = case.routing
    return {
        "order_id": order.order_id,
        "case_id": order.case_id,
        "department": order.department,
        "hop": order.hop,
        "kind": order.kind,
        "issued_at": utc(order.issued_at),
        "deadlines": {"acknowledge_by": utc(order.acknowledge_by), "resolve_by": utc(order.resolve_by)},
        "case": {
            "title": f.title,
            "description": f.description,
            "category": msgspec.to_builtins(f.category),
            "severity": msgspec.to_builtins(f.severity),
            "location": f.location,
            "division": msgspec.to_builtins(f.division),
            "network": f.network,
        },
        "instructions": order.instructions,
        "routing": {
            "rule_code": routing.rule_code if routing else None,
            "rule_version": routing.rule_version if routing else None,
            "previous_department": order.previous_department,
        },
    }
