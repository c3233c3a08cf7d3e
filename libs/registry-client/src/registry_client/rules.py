"""The registry's business rules, as every service applies them to the records of `RegistryView`.

- `match_route`: the routing rule in force for a case (分类处置) and its departments;
- `match_sla` / `admits` / `allows_self_handle`: the SLA policy in force and what it allows;
- `due_at` / `working_calendar` / `calendar_version`: deadlines on the policy's clock, with China's
  official working-day calendar (`registry_client.workcal`).

Pure functions over JSON records (contracts/schemas/registry-record.v1.json): the grid registry
answers lookups with them and dispatch, intake and the console decide with the same ones.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from datetime import time as clock
from typing import Any

from registry_client.workcal import WorkCalendar

Json = dict[str, Any]

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")


@dataclass(frozen=True, slots=True)
class Route:
    """Where a case goes: the rule that decided, its departments (orders topics) and whether the
    departments must report in (吹哨报到)."""

    rule: str
    departments: tuple[str, ...]
    whistle: bool


def match_route(
    rules: Iterable[Json],
    category: str,
    severity: int,
    *,
    codes: Iterable[str] = (),
    tier: str | None = None,
    network: str | None = None,
) -> Route | None:
    """The matching active rule with the lowest (priority, code), or None.

    A rule's empty match list matches anything. `codes` are the case's division and grid codes (its
    GridChain); a rule's division code matches a case code it prefixes ("321003" matches every code in
    邗江区). A rule naming networks or tiers does not match a case whose network or tier is unknown.
    """
    case_codes = tuple(codes)
    best: tuple[int, str, Json] | None = None
    for rule in rules:
        m = rule.get("match", {})
        if not rule.get("active", True):
            continue
        if not (
            _admits(m.get("category_codes"), category)
            and _admits(m.get("severity_levels"), severity)
            and _admits(m.get("networks"), network)
            and _admits(m.get("tiers"), tier)
            and (
                not m.get("division_codes")
                or any(c.startswith(d) for d in m["division_codes"] for c in case_codes)
            )
        ):
            continue
        key = (int(rule.get("priority", 0)), str(rule["code"]), rule)
        if best is None or key[:2] < best[:2]:
            best = key
    if best is None:
        return None
    rule = best[2]
    return Route(rule["code"], tuple(rule["departments"]), bool(rule.get("whistle", False)))


def admits(match: Json, category: str, severity: int) -> bool:
    """Whether a rule's or policy's `match` admits the category and severity (an empty list admits
    anything): an index by the pair narrows the rules `match_route` must look at."""
    return _admits(match.get("category_codes"), category) and _admits(match.get("severity_levels"), severity)


def match_sla(policies: Iterable[Json], category: str, severity: int) -> Json | None:
    """The most specific matching active policy: one naming the category beats one naming only the
    severity, which beats a catch-all; ties go to the smallest code. None when nothing matches."""
    best: tuple[int, str, Json] | None = None
    for policy in policies:
        m = policy.get("match", {})
        if not policy.get("active", True):
            continue
        if not (_admits(m.get("category_codes"), category) and _admits(m.get("severity_levels"), severity)):
            continue
        rank = (0 if m.get("category_codes") else 2) + (0 if m.get("severity_levels") else 1)
        if best is None or (rank, policy["code"]) < best[:2]:
            best = (rank, str(policy["code"]), policy)
    return None if best is None else best[2]


def allows_self_handle(policy: Json | None, category: str) -> bool:
    """Whether a grid worker may resolve a case of `category` on the spot (第一时间处置) under
    `policy` (the one `match_sla` found): only the categories its `self_handle_categories` names;
    none without a policy. Dispatch refuses other self-handlings and the worker's app offers none."""
    return policy is not None and category in (policy.get("self_handle_categories") or ())


def due_at(start: datetime, seconds: int, policy: Json) -> datetime:
    """When `seconds` of the policy's clock have run from `start` (aware), in UTC.

    Calendar "24x7": wall-clock seconds. "working_days": only time inside the business hours
    (default 08:30-17:30 China Standard Time) on China's official working days (statutory holidays
    skipped, 调休 make-up days worked; ``registry_client.workcal``), outside the office's own listed closures;
    a case raised at night starts counting when the office opens.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if policy.get("calendar") != "working_days":
        return (start + timedelta(seconds=seconds)).astimezone(UTC)
    return working_calendar(policy).add_working_time(start, timedelta(seconds=seconds))


def working_calendar(policy: Json) -> WorkCalendar:
    """The official working-day calendar (holidays and 调休 make-up days, ``registry_client.workcal``) with the
    policy's office hours (default 08:30-17:30) and its own closures (``business_hours.holidays``)."""
    hours = policy.get("business_hours") or {}
    return _calendar(hours.get("start", "08:30"), hours.get("end", "17:30"), tuple(hours.get("holidays", [])))


@functools.lru_cache(maxsize=256)
def _calendar(start: str, end: str, holidays: tuple[str, ...]) -> WorkCalendar:
    # Built once per distinct office: every deadline armed reads it twice (due time and version).
    opens, closes = _clock(start), _clock(end)
    if closes <= opens:
        raise ValueError(f"business hours {opens}-{closes} are empty")
    closed = frozenset(date.fromisoformat(d) for d in holidays)
    return WorkCalendar(office_hours=((opens, closes),), closed=closed)


def calendar_version(policy: Json, start: datetime, due: datetime) -> str:
    """What a deadline from ``start`` to ``due`` under ``policy`` was computed on."""
    if policy.get("calendar") != "working_days":
        return "24x7"
    return working_calendar(policy).version_for(start, due)


def _admits(allowed: list[Any] | None, value: Any) -> bool:
    return not allowed or (value is not None and value in allowed)


def _clock(hhmm: str) -> clock:
    hour, minute = hhmm.split(":")
    return clock(int(hour), int(minute))
