"""The grid workers' own figures (网格员考核), from the lifecycle stream: per worker, the patrol
reports that opened a case (巡查上报: the `register` of a `patrol` case is in the worker's name), the
cases handled on the spot (`self_handle`), and the checks made (`verify` or `rework` of a resolved
case) with how long each took from the case's latest entry into `resolved`.

Contract: pure and deterministic over any order and repetition of events (dispatch publishes at
least once): per case, events are ordered by `seq` and the first of each `seq` is kept. Only staff
actors count; a worker's row appears once it has one act.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

CHECKS = frozenset({"verify", "rework"})


@dataclass
class WorkerFigures:
    worker: str
    patrol_reports: int = 0
    self_handled: int = 0
    verifications: int = 0
    verifications_failed: int = 0
    verify_s: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        times = sorted(self.verify_s)
        return {
            "worker": self.worker,
            "patrol_reports": self.patrol_reports,
            "self_handled": self.self_handled,
            "verifications": self.verifications,
            "verifications_failed": self.verifications_failed,
            "verify_mean_s": round(sum(times) / len(times), 1) if times else None,
            "verify_median_s": times[len(times) // 2] if times else None,
            "verify_max_s": times[-1] if times else None,
        }


def _at(event: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["at"]).replace("Z", "+00:00"))


def worker_figures(events: Iterable[Mapping[str, Any]]) -> list[WorkerFigures]:
    """Figures per staff worker, by worker id."""
    cases: dict[str, dict[int, Mapping[str, Any]]] = {}
    for e in events:
        cases.setdefault(str(e["case_id"]), {}).setdefault(int(e["seq"]), e)
    out: dict[str, WorkerFigures] = {}
    for by_seq in cases.values():
        resolved_at: datetime | None = None
        for seq in sorted(by_seq):
            e = by_seq[seq]
            actor, action = e.get("actor") or {}, e.get("action")
            if actor.get("kind") == "staff":
                row = out.setdefault(str(actor["id"]), WorkerFigures(str(actor["id"])))
                if action == "register" and (e.get("dimensions") or {}).get("network") == "patrol":
                    row.patrol_reports += 1
                elif action == "self_handle":
                    row.self_handled += 1
                elif action in CHECKS and e.get("from_state") == "resolved":
                    row.verifications += 1
                    row.verifications_failed += action == "rework"
                    if resolved_at is not None:
                        row.verify_s.append(max(0.0, (_at(e) - resolved_at).total_seconds()))
            if e.get("to_state") == "resolved":
                resolved_at = _at(e)
    return sorted(out.values(), key=lambda w: w.worker)
