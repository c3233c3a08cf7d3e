"""A scripted case.lifecycle.v1 stream of eight cases and the figures it must give, worked out by hand.

Shared by the unit tests (pure fold and aggregation) and the integration test (real broker and
PostgreSQL), which loads this file by path. Every event is a complete lifecycle-event.v1 body; the
unit tests validate them against the schema. Times are UTC; the city's day is UTC+8, so 01:00Z is
09:00 local. 2026-03-02 is a Monday: every case falls in the week of 2026-03-02 and month 2026-03.
SLA: acknowledge within 1 h, resolve within 24 h of registration. Policy: reopen window 7 days,
verification limit 24 h.

  A  chengguan  grid ..9001001 open311 street_vending  on time                  ack 1200 s  resolve 14400 s
  B  chengguan  grid ..9001002 party   garbage         closed, reopened 38 h later, closed again: NOT on time
                                                                                 ack 1800 s  resolve 194400 s
  C  shengtai -> returned (退单) -> arbitrated to chengguan, closed late         ack 7200 s  resolve 93600 s
  D  zhujian    suspended 24 h (clock stopped), closed 23 h after the first deadline: on time
                                                                                 ack 600 s   resolve 68400 s
  E  chengguan  whistled (吹哨), reworked (返工, check 50 h after resolve: late), closed late
                                                                                 ack 5400 s  resolve 230400 s
  F  no department: self-handled by the grid worker, on time                    resolve 1800 s
  G  shichang   street 321003010, cancelled
  H  shichang   street 321003010, acknowledged, still open (rule version 8)      ack 2700 s
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

HOUR = 3600.0
NS = uuid.UUID("6f0e5b1e-3c51-4f7e-9a39-0d5e3f1a2b4c")


def t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def utc(x: datetime | None) -> str | None:
    return None if x is None else x.isoformat().replace("+00:00", "Z")


class CaseScript:
    """Builds one case's events the way dispatch emits them (deadlines after each transition)."""

    def __init__(
        self, name: str, *, network: str, category: str, grid: str | None, street: str, rule: str = "7"
    ):
        self.case_id = str(uuid.uuid5(NS, name))
        self.name = name
        self.network, self.category, self.grid, self.street, self.rule = network, category, grid, street, rule
        self.events: list[dict[str, Any]] = []
        self.state: str | None = None
        self.department: str | None = None
        self.hops = 0
        self.ack_by: datetime | None = None
        self.resolve_by: datetime | None = None
        self.first_resolve_by: datetime | None = None
        self.paused: tuple[str, float | None, float | None] | None = None
        self.counters = {"hops": 0, "reworks": 0, "reopens": 0, "escalations": 0, "returns": 0}

    def _emit(
        self, action: str, to: str, at: datetime, actor: dict[str, str], reason: str | None = None
    ) -> None:
        body: dict[str, Any] = {
            "event_id": str(uuid.uuid5(NS, f"{self.name}/{len(self.events) + 1}")),
            "case_id": self.case_id,
            "seq": len(self.events) + 1,
            "from_state": self.state,
            "to_state": to,
            "action": action,
            "actor": actor,
            "reason": reason,
            "at": utc(at),
            "deadlines": {"acknowledge_by": utc(self.ack_by), "resolve_by": utc(self.resolve_by)},
            "dimensions": {
                "network": self.network,
                "category_code": self.category,
                "severity_level": 3,
                "district": self.street[:6],
                "street": self.street,
                "community": self.grid[:12] if self.grid else None,
                "grid": self.grid,
                "department": self.department,
                "hops": self.hops,
                "tier": "grid",
            },
            "versions": {
                "rule_version": self.rule,
                "taxonomy_version": "2026.1",
                "grid_version": "2026-02-28T16:00:00Z#412",
            },
            "deadline_id": None,
            "counters": dict(self.counters),
        }
        if to == "closed":  # dispatch's own flag: first deadline, no reopen so far (it ignores pauses)
            body["on_time"] = bool(
                self.first_resolve_by and at <= self.first_resolve_by and not self.counters["reopens"]
            )
        self.events.append(body)
        self.state = to

    SYSTEM: ClassVar[dict[str, str]] = {"kind": "system", "id": "dispatch", "display": "系统"}

    def _dept(self) -> dict[str, str]:
        return {"kind": "department", "id": self.department or "grid", "display": self.department or "网格"}

    def register(self, at: datetime) -> CaseScript:
        self.resolve_by = self.first_resolve_by = at + timedelta(hours=24)
        self._emit("register", "registered", at, self.SYSTEM)
        return self

    def dispatch(
        self, at: datetime, department: str, action: str = "dispatch", reason: str | None = None
    ) -> CaseScript:
        self.department, self.hops = department, self.hops + 1
        self.counters["hops"] += 1
        self.ack_by, self.resolve_by = at + timedelta(hours=1), at + timedelta(hours=24)
        self._emit(action, "dispatched", at, self.SYSTEM, reason)
        return self

    def acknowledge(self, at: datetime) -> CaseScript:
        self.ack_by = None
        self._emit("acknowledge", "acknowledged", at, self._dept())
        return self

    def return_(self, at: datetime) -> CaseScript:
        self.counters["returns"] += 1
        self.ack_by = self.resolve_by = None
        self._emit("return", "returned", at, self._dept(), "return.not_our_duty")
        return self

    def escalate(self, at: datetime) -> CaseScript:
        self.counters["escalations"] += 1
        self.ack_by = at + timedelta(hours=1)
        self._emit("escalate", "escalated", at, self.SYSTEM, "sla.acknowledge_overdue")
        return self

    def resolve(self, at: datetime) -> CaseScript:
        self.ack_by = self.resolve_by = None
        self._emit("resolve", "resolved", at, self._dept())
        return self

    def self_handle(self, at: datetime) -> CaseScript:
        self.ack_by = self.resolve_by = None
        self._emit("self_handle", "resolved", at, {"kind": "staff", "id": "hj-grid/0007", "display": "王*"})
        return self

    def verify_and_close(self, at: datetime) -> CaseScript:
        inspector = {"kind": "staff", "id": "hj-supervision/0003", "display": "张*"}
        self._emit("verify", "verified", at, inspector, "verify.passed")
        self._emit("close", "closed", at, inspector)
        return self

    def rework(self, at: datetime) -> CaseScript:
        inspector = {"kind": "staff", "id": "hj-supervision/0003", "display": "张*"}
        return self._again("reworks", "rework", "in_progress", at, inspector, "verify.failed")

    def reopen(self, at: datetime) -> CaseScript:
        citizen = {"kind": "citizen", "id": "open311", "display": "市*"}
        return self._again("reopens", "reopen", "reopened", at, citizen, "reopen.requested")

    def _again(
        self, counter: str, action: str, to: str, at: datetime, actor: dict[str, str], reason: str
    ) -> CaseScript:
        """Back to work on a closed-out step: counted, and a new day to resolve it."""
        self.counters[counter] += 1
        self.resolve_by = at + timedelta(hours=24)
        self._emit(action, to, at, actor, reason)
        return self

    def suspend(self, at: datetime) -> CaseScript:
        left = lambda d: (d - at).total_seconds() if d else None  # noqa: E731
        self.paused = (self.state or "", left(self.ack_by), left(self.resolve_by))
        self.ack_by = self.resolve_by = None
        self._emit("suspend", "suspended", at, self.SYSTEM, "suspend.awaiting_weather")
        return self

    def resume(self, at: datetime) -> CaseScript:
        assert self.paused is not None
        back, ack_left, res_left = self.paused
        self.ack_by = at + timedelta(seconds=ack_left) if ack_left is not None else None
        self.resolve_by = at + timedelta(seconds=res_left) if res_left is not None else None
        self.paused = None
        self._emit("resume", back, at, self.SYSTEM)
        return self

    def cancel(self, at: datetime) -> CaseScript:
        self.ack_by = self.resolve_by = None
        self._emit("cancel", "cancelled", at, self.SYSTEM, "cap.cancelled")
        return self


S1, S2 = "321003009", "321003010"
G1, G2, G3, G4, G5 = (S1 + "001001", S1 + "001002", S1 + "002001", S1 + "002002", S2 + "001001")


def cases() -> dict[str, CaseScript]:
    a = CaseScript("A", network="open311", category="city.street_vending", grid=G1, street=S1)
    a.register(t(2, 1)).dispatch(t(2, 1), "chengguan").acknowledge(t(2, 1, 20)).resolve(
        t(2, 5)
    ).verify_and_close(t(2, 6))
    b = CaseScript("B", network="party", category="city.garbage", grid=G2, street=S1)
    b.register(t(2, 2)).dispatch(t(2, 2), "chengguan").acknowledge(t(2, 2, 30)).resolve(
        t(2, 10)
    ).verify_and_close(t(2, 12))
    b.reopen(t(4, 2)).dispatch(t(4, 2), "chengguan", reason="reopen.redispatch").acknowledge(t(4, 3)).resolve(
        t(4, 8)
    )
    b.verify_and_close(t(4, 9))
    c = CaseScript("C", network="env", category="env.noise.exceedance", grid=G3, street=S1)
    c.register(t(2, 3)).dispatch(t(2, 3), "shengtai").return_(t(2, 3, 40))
    c.dispatch(t(2, 4, 40), "chengguan", action="arbitrate", reason="arbitration.decided").acknowledge(
        t(2, 5)
    )
    c.resolve(t(3, 5)).verify_and_close(t(3, 6))
    d = CaseScript("D", network="safety", category="safety.work_safety", grid=G4, street=S1)
    d.register(t(3, 1)).dispatch(t(3, 1), "zhujian").acknowledge(t(3, 1, 10)).suspend(t(3, 2)).resume(t(4, 2))
    d.resolve(t(4, 20)).verify_and_close(t(5, 0))
    e = CaseScript("E", network="open311", category="city.street_vending", grid=G1, street=S1)
    e.register(t(3, 2)).dispatch(t(3, 2), "chengguan").escalate(t(3, 3)).acknowledge(t(3, 3, 30)).resolve(
        t(3, 10)
    )
    e.rework(t(5, 12)).resolve(t(5, 18)).verify_and_close(t(5, 20))
    f = CaseScript("F", network="party", category="city.garbage", grid=G1, street=S1)
    f.register(t(3, 4)).self_handle(t(3, 4, 30)).verify_and_close(t(3, 5))
    g = CaseScript("G", network="emergency", category="emergency.flood", grid=G5, street=S2)
    g.register(t(4, 1)).dispatch(t(4, 1), "shichang").cancel(t(4, 2))
    h = CaseScript("H", network="emergency", category="emergency.flood", grid=G5, street=S2, rule="8")
    h.register(t(4, 3)).dispatch(t(4, 3), "shichang").acknowledge(t(4, 3, 45))
    return {s.name: s for s in (a, b, c, d, e, f, g, h)}


def stream() -> list[dict[str, Any]]:
    """Every event, interleaved by time as dispatch would publish them, with one event published twice."""
    evs = [e for s in cases().values() for e in s.events]
    evs.sort(key=lambda e: (e["at"], e["case_id"], e["seq"]))
    repeat = next(e for e in evs if e["case_id"] == cases()["A"].case_id and e["seq"] == 4)
    return [*evs, dict(repeat)]


# -- the figures, by hand ------------------------------------------------------------------------
DEFINITION = "eval.v2;reopen_window_s=604800;verification_limit_s=86400"

PER_CASE = {  # name: (on_time, acknowledge_s, resolve_s, hops, verifications, in time)
    "A": (True, 1200.0, 14400.0, 1, 1, 1),
    "B": (False, 1800.0, 194400.0, 2, 2, 2),
    "C": (False, 7200.0, 93600.0, 2, 1, 1),
    "D": (True, 600.0, 68400.0, 1, 1, 1),
    "E": (False, 5400.0, 230400.0, 1, 2, 1),
    "F": (True, None, 1800.0, 0, 1, 1),
    "G": (False, None, None, 1, 0, 0),
    "H": (False, 2700.0, None, 1, 0, 0),
}

CITY_MONTH = {
    "registered": 8,
    "cancelled": 1,
    "merged": 0,
    "closable": 7,
    "closed": 6,
    "closure_rate": 6 / 7,
    "on_time_closed": 3,
    "on_time_closure_rate": 3 / 7,
    # acknowledge: 600 1200 1800 2700 5400 7200 -> 3rd and 6th of six
    "acknowledge_median_s": 1800.0,
    "acknowledge_p90_s": 7200.0,
    # resolve: 1800 14400 68400 93600 194400 230400
    "resolve_median_s": 68400.0,
    "resolve_p90_s": 230400.0,
    "dispatched": 7,
    "returned": 1,
    "return_rate": 1 / 7,
    "resolved": 6,
    "reworked": 1,
    "rework_rate": 1 / 6,
    "ever_closed": 6,
    "reopened": 1,
    "reopen_rate": 1 / 6,
    "whistled": 1,
    "whistle_rate": 1 / 8,
    "hops": 9,
    "hops_per_case": 9 / 8,
    "self_handled": 1,
    "self_handled_rate": 1 / 8,
    "verifications": 8,
    "verifications_in_time": 7,
    "verification_timeliness": 7 / 8,
    "incomplete": 0,
    "rule_versions": ("7", "8"),
    "taxonomy_versions": ("2026.1",),
    "grid_versions": ("2026-02-28T16:00:00Z#412",),  # the registry version every case was decided with
    "last_event_at": t(5, 20),  # E verified and closed
    "restated": False,  # the month is still running at its last event (5 March)
    "definition": DEFINITION,
}

EXPECTED: dict[tuple[str, str, str, str], dict[str, Any]] = {
    ("all", "*", "month", "2026-03-01"): CITY_MONTH,
    ("all", "*", "week", "2026-03-02"): CITY_MONTH,
    ("department", "chengguan", "month", "2026-03-01"): {
        "registered": 4,
        "closable": 4,
        "closed": 4,
        "closure_rate": 1.0,
        "on_time_closed": 1,
        "on_time_closure_rate": 0.25,
        # Its own stints (eval.v2): A 1200, B 1800 and 3600 (dispatched again after the reopen),
        # C 1200 (from the arbitration that gave it the case, not from shengtai's order), E 5400.
        "acknowledge_median_s": 1800.0,
        "acknowledge_p90_s": 5400.0,  # 1200 1200 1800 3600 5400
        # A 14400, B 28800 and 21600, C 87600 (arbitrated 04:40, resolved 05:00 next day), E 230400
        "resolve_median_s": 28800.0,
        "resolve_p90_s": 230400.0,  # 14400 21600 28800 87600 230400
        "dispatched": 4,
        "returned": 0,  # C was returned by shengtai, not by chengguan
        "return_rate": 0.0,
        "reworked": 1,
        "rework_rate": 0.25,
        "reopened": 1,
        "reopen_rate": 0.25,
        "whistled": 1,
        "whistle_rate": 0.25,
        "hops": 6,
        "hops_per_case": 1.5,
        "self_handled": 0,
        "self_handled_rate": 0.0,
        "verifications": 6,
        "verifications_in_time": 5,
        "verification_timeliness": 5 / 6,
        "rule_versions": ("7",),
    },
    ("department", "shengtai", "month", "2026-03-01"): {
        # shengtai holds no case at the end, but it returned C 40 minutes after the order
        "registered": 0,
        "closable": 0,
        "closure_rate": None,
        "dispatched": 1,
        "returned": 1,
        "return_rate": 1.0,
        "acknowledge_median_s": 2400.0,
        "resolved": 0,
        "rework_rate": None,
        "whistle_rate": 0.0,
        "hops": 0,
    },
    ("department", "shichang", "month", "2026-03-01"): {
        "registered": 2,
        "cancelled": 1,
        "closable": 1,
        "closed": 0,
        "closure_rate": 0.0,
        "on_time_closure_rate": 0.0,
        "acknowledge_median_s": 2700.0,
        "acknowledge_p90_s": 2700.0,
        "resolve_median_s": None,
        "rework_rate": None,
        "reopen_rate": None,
        "return_rate": 0.0,
        "verification_timeliness": None,
        "hops_per_case": 1.0,
        "rule_versions": ("7", "8"),
    },
    ("department", "zhujian", "month", "2026-03-01"): {
        "registered": 1,
        "on_time_closed": 1,
        "on_time_closure_rate": 1.0,
    },
    ("department", "none", "month", "2026-03-01"): {
        "registered": 1,
        "self_handled": 1,
        "self_handled_rate": 1.0,
    },
    ("street", S1, "month", "2026-03-01"): {
        "registered": 6,
        "closable": 6,
        "closed": 6,
        "closure_rate": 1.0,
        "on_time_closed": 3,
        "on_time_closure_rate": 0.5,
        "returned": 1,
        "reopened": 1,
        "whistled": 1,
        "hops": 7,
    },
    ("street", S2, "month", "2026-03-01"): {"registered": 2, "closable": 1, "closed": 0, "hops": 2},
    ("district", "321003", "month", "2026-03-01"): {"registered": 8, "on_time_closed": 3, "closable": 7},
    ("grid", G1, "month", "2026-03-01"): {
        "registered": 3,
        "on_time_closed": 2,
        "on_time_closure_rate": 2 / 3,
        "self_handled": 1,
        "resolve_median_s": 14400.0,
        "resolve_p90_s": 230400.0,  # 1800 14400 230400
    },
    ("network", "open311", "month", "2026-03-01"): {"registered": 2, "on_time_closed": 1, "reworked": 1},
    ("category", "city.garbage", "month", "2026-03-01"): {
        "registered": 2,
        "on_time_closed": 1,
        "reopened": 1,
    },
    ("all", "*", "day", "2026-03-02"): {
        # B was reopened and closed again on the 4th: figures read at the end of the 2nd were restated
        "last_event_at": t(4, 9),
        "restated": True,
        "registered": 3,
        "closed": 3,
        "on_time_closed": 1,
        "on_time_closure_rate": 1 / 3,
        "returned": 1,
    },
    ("all", "*", "day", "2026-03-03"): {
        "registered": 3,
        "closed": 3,
        "on_time_closed": 2,
        "on_time_closure_rate": 2 / 3,
        "acknowledge_median_s": 600.0,
        "acknowledge_p90_s": 5400.0,  # D 600, E 5400
    },
    ("all", "*", "day", "2026-03-04"): {
        "registered": 2,
        "cancelled": 1,
        "closable": 1,
        "closed": 0,
        "last_event_at": t(4, 3, 45),  # H acknowledged at 11:45 local, within the day
        "restated": False,
    },
}
# Rows per granularity: all 1, department 5 (shengtai returned C), grid 5, street 2, district 1,
# network 5, category 5.
ROWS_PER_PERIOD = 1 + 5 + 5 + 2 + 1 + 5 + 5
DAYS = 3
EXPECTED_ROW_COUNT = {"month": ROWS_PER_PERIOD, "week": ROWS_PER_PERIOD}


# -- charged to whoever acted (eval.v2) ---------------------------------------------------------------
# Case J, registered Thursday 2026-03-05 09:00 local (01:00Z), resolve due 24 h later:
#   01:00 dispatched to sifa          01:30 sifa returns it (退单 #1, sifa answered after 1800 s)
#   02:00 reassigned to gongan        02:20 gongan returns it (退单 #2, answered after 1200 s)
#   03:00 arbitrated to chengguan     03:30 acknowledged (1800 s)   08:00 resolved (18000 s)
#   10:00 the check fails: 返工, charged to chengguan, whose resolution it was (in time: 2 h)
#   10:30 reassigned to zhujian       11:30 whistled at (吹哨, zhujian had not acknowledged)
#   12:00 zhujian acknowledges (5400 s)   20:00 resolved (34200 s)   22:00 verified and closed, on time
# Before eval.v2 every figure went to zhujian, the latest department: return rate 1.0, rework rate 1.0,
# acknowledge time 9000 s (from sifa's order) though zhujian returned nothing and was never reworked.
def charged_cases() -> dict[str, CaseScript]:
    j = CaseScript("J", network="open311", category="city.street_vending", grid=G3, street=S1)
    j.register(t(5, 1)).dispatch(t(5, 1), "sifa").return_(t(5, 1, 30))
    j.dispatch(t(5, 2), "gongan", action="reassign", reason="return.redispatch").return_(t(5, 2, 20))
    j.dispatch(t(5, 3), "chengguan", action="arbitrate", reason="arbitration.decided").acknowledge(
        t(5, 3, 30)
    )
    j.resolve(t(5, 8)).rework(t(5, 10))
    j.dispatch(t(5, 10, 30), "zhujian", action="reassign", reason="reassign.wrong_department")
    j.escalate(t(5, 11, 30)).acknowledge(t(5, 12)).resolve(t(5, 20)).verify_and_close(t(5, 22))
    return {"J": j}


def charged_stream() -> list[dict[str, Any]]:
    return [e for s in charged_cases().values() for e in s.events]


# J's case-level facts: (on_time, acknowledge_s, resolve_s, hops, returns, reworks, whistles, checks, in time)
CHARGED_CASE = (True, 9000.0, 68400.0, 4, 2, 1, 1, 2, 2)

CHARGED: dict[str, dict[str, Any]] = {  # department rows of month 2026-03 (and week 2026-03-02, day 03-05)
    "sifa": {
        "registered": 0,
        "closable": 0,
        "closure_rate": None,
        "on_time_closure_rate": None,
        "dispatched": 1,
        "returned": 1,
        "return_rate": 1.0,
        "acknowledge_median_s": 1800.0,
        "resolve_median_s": None,
        "resolved": 0,
        "reworked": 0,
        "rework_rate": None,
        "whistled": 0,
        "whistle_rate": 0.0,
        "hops": 0,
    },
    "gongan": {
        "registered": 0,
        "dispatched": 1,
        "returned": 1,
        "return_rate": 1.0,
        "acknowledge_median_s": 1200.0,
        "resolved": 0,
        "whistled": 0,
    },
    "chengguan": {
        "registered": 0,
        "closed": 0,
        "dispatched": 1,
        "returned": 0,
        "return_rate": 0.0,
        "acknowledge_median_s": 1800.0,
        "resolve_median_s": 18000.0,
        "resolved": 1,
        "reworked": 1,
        "rework_rate": 1.0,
        "whistled": 0,
        "whistle_rate": 0.0,
        "verifications": 0,
    },
    "zhujian": {
        "registered": 1,
        "closable": 1,
        "closed": 1,
        "closure_rate": 1.0,
        "on_time_closed": 1,
        "on_time_closure_rate": 1.0,
        "dispatched": 1,
        "returned": 0,
        "return_rate": 0.0,
        "acknowledge_median_s": 5400.0,
        "acknowledge_p90_s": 5400.0,
        "resolve_median_s": 34200.0,
        "resolved": 1,
        "reworked": 0,
        "rework_rate": 0.0,
        "whistled": 1,
        "whistle_rate": 1.0,
        "hops": 4,
        "hops_per_case": 4.0,
        "verifications": 2,
        "verifications_in_time": 2,
    },
}
# The city row keeps the case's figures: one case returned twice is one returned case, and so on.
CHARGED_CITY = {
    "registered": 1,
    "dispatched": 1,
    "returned": 1,
    "return_rate": 1.0,
    "reworked": 1,
    "whistled": 1,
    "whistle_rate": 1.0,
    "hops": 4,
    "acknowledge_median_s": 9000.0,
    "resolve_median_s": 68400.0,
    "on_time_closed": 1,
}


# -- the registry, for dimensions and zero rows ---------------------------------------------------
STAFF: dict[str, Any] = {
    "kind": "staff",
    "code": "hj-grid/0007",
    "revision": 1,
    "updated_at": "2025-06-01T00:00:00Z",
    "name": "王小明",
    "active": True,
    "role": "grid_worker",
    "phone": "13800000000",
    "grid_codes": [G1],
    "department": None,
}


def department(code: str, revision: int, at: str, active: bool = True) -> dict[str, Any]:
    return {
        "kind": "department",
        "code": code,
        "revision": revision,
        "updated_at": at,
        "name": code,
        "active": active,
        "tier": "city",
        "division_code": "321003",
        "parent_code": None,
        "category_codes": [],
    }


def grid(code: str) -> dict[str, Any]:
    return {
        "kind": "grid",
        "code": code,
        "revision": 1,
        "updated_at": "2025-01-01T00:00:00Z",
        "name": code,
        "active": True,
        "level": "grid",
        "community_code": code[:12],
        "parent_grid_code": None,
        "special_kind": None,
        "area": None,
    }


def registry_records() -> list[dict[str, Any]]:
    """Registry records for the dimensions and zero rows: a department without cases (minzheng, from
    4 March 08:00 local), one wound up on 3 March (wenlv), a grid without cases, and a grid worker."""
    return [
        department("chengguan", 1, "2025-01-01T00:00:00Z"),
        department("minzheng", 1, "2026-03-04T00:00:00Z"),  # from 4 March 08:00 local
        department("wenlv", 1, "2025-01-01T00:00:00Z"),
        department("wenlv", 2, "2026-03-03T00:00:00Z", active=False),  # wound up on 3 March
        grid(G1),
        grid("321003010009009"),
        STAFF,
    ]
