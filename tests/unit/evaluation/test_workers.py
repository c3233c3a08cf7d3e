"""Grid workers' figures: patrol reports, on-the-spot handling, checks and how long they took."""

from __future__ import annotations

from evaluation.domain.workers import worker_figures


def ev(
    case: str, seq: int, action: str, to: str, at: str, actor: str = "dispatch", kind: str = "system", **kw
):  # type: ignore[no-untyped-def]
    frm = kw.pop("frm", None)
    return {
        "case_id": case,
        "seq": seq,
        "action": action,
        "from_state": frm,
        "to_state": to,
        "at": at,
        "actor": {"kind": kind, "id": actor, "display": ""},
        "dimensions": {"network": kw.pop("network", "patrol")},
    }


def test_reports_self_handling_and_checks_are_counted_per_worker() -> None:
    a, b = "grid_worker:gw-a", "grid_worker:gw-b"
    events = [
        ev("c1", 1, "register", "registered", "2026-12-04T01:00:00Z", a, "staff"),
        ev("c1", 2, "self_handle", "resolved", "2026-12-04T01:30:00Z", a, "staff", frm="registered"),
        ev("c1", 3, "verify", "verified", "2026-12-04T02:30:00Z", b, "staff", frm="resolved"),
        ev("c1", 3, "verify", "verified", "2026-12-04T02:30:00Z", b, "staff", frm="resolved"),  # again
        ev("c2", 1, "register", "registered", "2026-12-04T01:00:00Z", network="party"),
        ev("c2", 3, "rework", "in_progress", "2026-12-04T05:00:00Z", a, "staff", frm="resolved"),
        ev("c2", 2, "resolve", "resolved", "2026-12-04T04:00:00Z", "weijian", "department", frm="dispatched"),
        ev("c3", 1, "register", "registered", "2026-12-04T01:00:00Z", a, "staff", network="party"),
    ]
    rows = {r.worker: r.to_json() for r in worker_figures(events)}
    assert rows[a] | {} == {
        "worker": a,
        "patrol_reports": 1,
        "self_handled": 1,
        "verifications": 1,
        "verifications_failed": 1,
        "verify_mean_s": 3600.0,
        "verify_median_s": 3600.0,
        "verify_max_s": 3600.0,
    }
    assert (rows[b]["verifications"], rows[b]["verify_max_s"], rows[b]["patrol_reports"]) == (1, 3600.0, 0)
    assert set(rows) == {a, b}
