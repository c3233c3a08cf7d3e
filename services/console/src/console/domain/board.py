"""The case board: open cases, their state and deadlines, and the SLA breaches and escalations.

Fed by two topics (both keyed by case id, so one case's events arrive in order):
- `cases.v1` (CaseEvent): a case exists from its `case.reported`, with its title, category, place and
  point; `case.cancelled` ends it.
- `case.lifecycle.v1` (LifecycleEvent): its state, department, deadlines and counters; events are
  applied when their `seq` is newer than the case's (a replayed topic changes nothing).
A case in a terminal state leaves the board; its id is remembered (the latest `keep_ended`) so a late
event does not bring it back. An alert is a lifecycle event that escalates (吹哨) or whose reason is an
SLA code (`sla.*`). Personal data (the CaseEvent's reporter) is never read.

Scope: every case keeps its most specific division code and its department, and every read takes
the caller's `ScopeFilter`, so an operator sees the cases (and their alerts and traces) of its own
divisions only, as dispatch decides it. The traces a case's events carried are remembered (the
latest `keep_traces`) so a trace can be shown to those who may see its case.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

Json = dict[str, Any]
TERMINAL = frozenset({"closed", "cancelled", "merged", "rejected"})
ALERT_ACTIONS = frozenset({"escalate", "whistle"})


# Division levels, most specific first: a case is in a scope when its most specific code is.
_LEVELS = ("micro_grid", "grid", "community", "street", "district")


class Scope(Protocol):
    """What the board needs of onegrid.auth's ScopeFilter (the domain imports no framework)."""

    @property
    def unrestricted(self) -> bool: ...

    def admits(
        self, *, division: str | None = ..., departments: tuple[str, ...] | list[str] = ...
    ) -> bool: ...


def most_specific(division: Json) -> str | None:
    return next((str(division[k]) for k in _LEVELS if division.get(k)), None)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class OpenCase:
    case_id: str
    state: str = "reported"
    seq: int = 0
    updated_at: str | None = None
    title: str | None = None
    category: str | None = None
    severity: int | None = None
    network: str | None = None
    source_id: str | None = None  # the first source record's own id (a patrol report's report_id)
    grid: str | None = None
    community: str | None = None
    division: str | None = None  # the most specific division code known
    department: str | None = None
    point: tuple[float, float] | None = None  # (lon, lat), WGS-84
    deadlines: dict[str, str | None] = field(default_factory=dict)
    escalations: int = 0
    # The photos of the case by content hash: a patrol report's, then each action's evidence (a
    # self-handling's before/after, a department's resolve, a check's), as {sha256, ref, by: "report"
    # | <action>, at}; evidence refs that name no hash (a department's own document) in `evidence`.
    photos: list[Json] = field(default_factory=list)
    evidence: list[Json] = field(default_factory=list)

    def visible_to(self, scope: Scope) -> bool:
        return scope.admits(division=self.division, departments=(self.department,) if self.department else ())

    def overdue(self, now: datetime) -> list[str]:
        """The deadlines (acknowledge_by, resolve_by) that have passed."""
        return [k for k, v in self.deadlines.items() if (t := parse_time(v)) is not None and t <= now]

    def to_json(self, now: datetime) -> Json:
        return {
            "case_id": self.case_id,
            "state": self.state,
            "seq": self.seq,
            "updated_at": self.updated_at,
            "title": self.title,
            "category": self.category,
            "severity": self.severity,
            "network": self.network,
            "source_id": self.source_id,
            "grid": self.grid,
            "community": self.community,
            "department": self.department,
            "lon": None if self.point is None else self.point[0],
            "lat": None if self.point is None else self.point[1],
            "deadlines": self.deadlines,
            "escalations": self.escalations,
            "overdue": self.overdue(now),
            "photos": self.photos,
            "evidence": self.evidence,
        }


@dataclass(frozen=True, slots=True)
class Alert:
    case_id: str
    at: str
    action: str
    reason: str | None
    state: str
    department: str | None
    grid: str | None
    division: str | None

    def visible_to(self, scope: Scope) -> bool:
        return scope.admits(division=self.division, departments=(self.department,) if self.department else ())

    def to_json(self) -> Json:
        return {
            "case_id": self.case_id,
            "at": self.at,
            "action": self.action,
            "reason": self.reason,
            "state": self.state,
            "department": self.department,
            "grid": self.grid,
        }


@dataclass(frozen=True, slots=True)
class Ended:
    state: str
    division: str | None
    department: str | None

    def visible_to(self, scope: Scope) -> bool:
        return scope.admits(division=self.division, departments=(self.department,) if self.department else ())


class CaseBoard:
    def __init__(self, keep_alerts: int = 100, keep_ended: int = 100_000, keep_traces: int = 100_000) -> None:
        self.open: dict[str, OpenCase] = {}
        # case_id -> how it ended; oldest forgotten first (memory stays bounded on a long run)
        self.ended: OrderedDict[str, Ended] = OrderedDict()
        self.keep_ended = keep_ended
        self.alerts: deque[Alert] = deque(maxlen=keep_alerts)
        self.alert_total = 0
        self._trace_case: OrderedDict[str, str] = OrderedDict()  # trace id -> case id
        self.keep_traces = keep_traces
        self._where: OrderedDict[str, tuple[str | None, str | None]] = OrderedDict()
        self._photo_cases: dict[str, set[str]] = {}  # photo hash -> the open cases showing it

    def get(self, case_id: str, scope: Scope) -> OpenCase | None:
        """The open case, when `scope` may see it."""
        case = self.open.get(case_id)
        return case if case is not None and case.visible_to(scope) else None

    def photo(self, case_id: str, sha256: str, scope: Scope) -> Json | None:
        """The photo `sha256` of the open case, when `scope` may see the case and the case has it."""
        case = self.get(case_id, scope)
        return next((p for p in case.photos if p["sha256"] == sha256), None) if case else None

    def sees_photo(self, sha256: str, scope: Scope) -> bool:
        """Whether `scope` may see an open case showing the photo `sha256`."""
        return any(self.get(c, scope) is not None for c in self._photo_cases.get(sha256, ()))

    def ended_state(self, case_id: str, scope: Scope) -> str | None:
        """How the case ended, when `scope` may see it."""
        ended = self.ended.get(case_id)
        return ended.state if ended is not None and ended.visible_to(scope) else None

    def saw_trace(self, trace_id: str, case_id: str) -> None:
        """Remember that an event of `case_id` carried `trace_id`."""
        self._trace_case[trace_id] = case_id
        self._trace_case.move_to_end(trace_id)
        while len(self._trace_case) > self.keep_traces:
            self._trace_case.popitem(last=False)

    def trace_visible(self, trace_id: str, scope: Scope) -> bool:
        """Whether the trace belongs to a case `scope` may see (open or ended)."""
        case_id = self._trace_case.get(trace_id)
        if case_id is None:
            return False
        return self.get(case_id, scope) is not None or self.ended_state(case_id, scope) is not None

    def case_event(self, ev: Json) -> None:
        """Apply one CaseEvent (cases.v1)."""
        case_id = str(ev.get("case_id") or "")
        if not case_id or case_id in self.ended:
            return
        if ev.get("event_type") == "case.cancelled":
            self._end(case_id, "cancelled")
            return
        case = self.open.setdefault(case_id, OpenCase(case_id))
        case.title = ev.get("title") or case.title
        category, severity = ev.get("category") or {}, ev.get("severity") or {}
        case.category = category.get("code") or case.category
        case.severity = severity.get("level") or case.severity
        case.network = (ev.get("source") or {}).get("network") or case.network
        case.source_id = case.source_id or (ev.get("source") or {}).get("source_id")
        division = ev.get("division") or {}
        case.grid = division.get("grid") or case.grid
        case.community = division.get("community") or case.community
        case.division = most_specific(division) or case.division
        point = (ev.get("location") or {}).get("point")
        if isinstance(point, dict) and isinstance(point.get("lon"), int | float):
            case.point = (float(point["lon"]), float(point["lat"]))
        if case.updated_at is None:
            case.updated_at = (ev.get("times") or {}).get("received_at")
        at = (ev.get("times") or {}).get("received_at")
        photos = (ev.get("attributes") or {}).get("photos")  # other networks count their photos
        for p in photos if isinstance(photos, list) else []:
            if isinstance(p, dict):
                self._add_evidence(case, str(p.get("ref", "")), "report", at)

    def lifecycle(self, ev: Json) -> None:
        """Apply one LifecycleEvent (case.lifecycle.v1); older or repeated events change nothing."""
        case_id = str(ev.get("case_id") or "")
        seq = int(ev.get("seq") or 0)
        if not case_id or case_id in self.ended:
            return
        case = self.open.setdefault(case_id, OpenCase(case_id))
        if seq <= case.seq:
            return
        case.seq = seq
        case.state = str(ev.get("to_state"))
        case.updated_at = ev.get("at")
        dims = ev.get("dimensions") or {}
        case.department = dims.get("department")
        case.grid = dims.get("grid") or case.grid
        case.community = dims.get("community") or case.community
        case.division = most_specific(dims) or case.division
        case.category = dims.get("category_code") or case.category
        case.severity = dims.get("severity_level") or case.severity
        case.network = dims.get("network") or case.network
        case.deadlines = dict(ev.get("deadlines") or {})
        for ref in ev.get("evidence") or []:
            self._add_evidence(case, str(ref), str(ev.get("action")), ev.get("at"))
        action, reason = str(ev.get("action")), ev.get("reason")
        if action in ALERT_ACTIONS or (isinstance(reason, str) and reason.startswith("sla.")):
            case.escalations += action in ALERT_ACTIONS
            self.alert_total += 1
            self.alerts.append(
                Alert(
                    case_id,
                    str(ev.get("at")),
                    action,
                    reason,
                    case.state,
                    case.department,
                    case.grid,
                    case.division,
                )
            )
        if case.state in TERMINAL:
            self._end(case_id, case.state)

    def _add_evidence(self, case: OpenCase, ref: str, by: str, at: str | None) -> None:
        """A photo by the hash its content-addressed ref names; any other ref as it is."""
        m = _PHOTO_REF.search(ref)
        if m is None:
            if ref and all(e["ref"] != ref for e in case.evidence):
                case.evidence.append({"ref": ref, "by": by, "at": at})
        elif all(p["ref"] != ref for p in case.photos):
            case.photos.append({"sha256": m.group(1), "ref": ref, "by": by, "at": at})
            self._photo_cases.setdefault(m.group(1), set()).add(case.case_id)

    def _end(self, case_id: str, state: str) -> None:
        case = self.open.pop(case_id, None)
        for p in case.photos if case else ():
            showing = self._photo_cases.get(p["sha256"], set())
            showing.discard(case_id)
            if not showing:
                self._photo_cases.pop(p["sha256"], None)
        self.ended[case_id] = (
            Ended(state, case.division, case.department) if case else Ended(state, None, None)
        )
        while len(self.ended) > self.keep_ended:
            self.ended.popitem(last=False)

    def summary(self, now: datetime, scope: Scope) -> Json:
        """Counts, overdue cases and alerts of the cases `scope` may see."""
        states: dict[str, int] = {}
        overdue = []
        visible = [c for c in self.open.values() if c.visible_to(scope)]
        alerts = [a for a in self.alerts if a.visible_to(scope)]
        for case in visible:
            states[case.state] = states.get(case.state, 0) + 1
            if case.overdue(now):
                overdue.append(case.to_json(now))
        overdue.sort(key=lambda c: str(c["updated_at"]))
        return {
            "open": len(visible),
            "ended": sum(1 for e in self.ended.values() if e.visible_to(scope)),
            "by_state": dict(sorted(states.items())),
            "overdue": overdue[:100],
            "overdue_total": len(overdue),
            "alerts": [a.to_json() for a in reversed(alerts)],
            "alert_total": self.alert_total if scope.unrestricted else len(alerts),
        }

    def points(self, now: datetime, scope: Scope) -> list[Json]:
        """Open cases that have a point and that `scope` may see, for the map."""
        return [c.to_json(now) for c in self.open.values() if c.point is not None and c.visible_to(scope)]


_PHOTO_REF = re.compile(r"(?:^|/)([0-9a-f]{64})\.[a-z]+$")
