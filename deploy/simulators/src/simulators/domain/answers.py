"""How simulated departments and grid workers answer, as plans and message bodies (no I/O).

A department that receives an order (contracts/schemas/dispatch-order.v1.json) acknowledges it after
a short delay (签收), reports progress, and resolves it with evidence (处理反馈); with probability
`return_rate` it returns an `assign` order instead (退单, never a whistle order: dispatch refuses
that), suggesting who should take it. Departments named in `silent` never answer (the whistle's
target). Feedback bodies follow contracts/schemas/feedback.v1.json.

A grid worker answers lifecycle events (lifecycle-event.v1.json): a case left at grid or community
tier without a department is handled on the spot (第一时间处置, `self_handle` with evidence); a
resolved case is checked on site (`verify`, or `rework` with probability `rework_rate`: 返工); a
returned case is arbitrated to the department the returning one suggested.

Cases whose title starts with DEMO_MARK belong to `python -m simulators demo`, which answers them
itself: everyone else leaves them alone.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

DEMO_MARK = "【演示】"
RETURN_CODES = (
    "return.not_our_duty",
    "return.outside_jurisdiction",
    "return.needs_enforcement",
    "return.insufficient_information",
)
RETURN_TO = "zhihui"  # the district's command centre (指挥中心) takes what nobody owns
RETURN_TO_FALLBACK = "jiedao_zhifa"

Json = dict[str, Any]


@dataclass(frozen=True)
class Behaviour:
    silent: frozenset[str] = frozenset({"chengguan"})
    return_rate: float = 0.1
    acknowledge_after_s: tuple[float, float] = (2.0, 15.0)
    progress_after_s: tuple[float, float] = (5.0, 30.0)
    resolve_after_s: tuple[float, float] = (10.0, 60.0)


@dataclass(frozen=True, slots=True)
class Step:
    """One feedback to send `after_s` seconds after the order arrived."""

    after_s: float
    kind: str  # acknowledge | progress | resolve | return
    return_reason: Json | None = None
    note: str | None = None


@dataclass
class Department:
    behaviour: Behaviour = field(default_factory=Behaviour)

    def plan(self, order: Json, rng: np.random.Generator) -> list[Step]:
        """What this department will send for `order`: nothing for a silent department or a demo
        case; else acknowledge, then either return or progress and resolve."""
        b = self.behaviour
        if order["department"] in b.silent or is_demo(order["case"]["title"]):
            return []
        ack = float(rng.uniform(*b.acknowledge_after_s))
        if order["kind"] == "assign" and rng.random() < b.return_rate:
            return [Step(ack, "return", return_reason(order, rng))]
        progress = ack + float(rng.uniform(*b.progress_after_s))
        resolve = progress + float(rng.uniform(*b.resolve_after_s))
        return [
            Step(ack, "acknowledge"),
            Step(progress, "progress", note="已到场处置。"),
            Step(resolve, "resolve", note="处置完毕，现场已恢复。"),
        ]


def is_demo(title: str) -> bool:
    return title.startswith(DEMO_MARK)


def return_reason(order: Json, rng: np.random.Generator) -> Json:
    code = RETURN_CODES[int(rng.integers(len(RETURN_CODES)))]
    to = RETURN_TO if order["department"] != RETURN_TO else RETURN_TO_FALLBACK
    return {"code": code, "suggested_department": to, "detail": f"经核实不属本单位职责，建议由{to}处置。"}


def feedback(order: Json, step: Step, at: datetime) -> Json:
    """The feedback.v1 body of `step` for `order`, sent at `at`."""
    dept = order["department"]
    return {
        "feedback_id": str(uuid.uuid4()),
        "order_id": order["order_id"],
        "case_id": order["case_id"],
        "department": dept,
        "kind": step.kind,
        "at": utc_text(at),
        "actor": {"kind": "department", "id": dept, "display": dept},
        "note": step.note,
        "evidence": [evidence(order["case_id"], order["order_id"], at)] if step.kind == "resolve" else [],
        "return_reason": step.return_reason if step.kind == "return" else None,
    }


def evidence(case_id: str, salt: str, at: datetime) -> Json:
    """A photo reference as the departments' apps upload them: object-store key by date and hash."""
    digest = hashlib.sha256(f"{case_id}:{salt}:{at.isoformat()}".encode()).hexdigest()
    return {
        "ref": f"evidence/{at:%Y/%m/%d}/{digest}.jpg",
        "media_type": "image/jpeg",
        "sha256": digest,
        "taken_at": utc_text(at),
    }


def utc_text(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class GridAction:
    """A grid worker's (or the command centre's) action on a case via dispatch's API."""

    case_id: str
    action: str  # self_handle | verify | rework | arbitrate
    body: Json
    idempotency_key: str


def grid_action(event: Json, rng: np.random.Generator, *, rework_rate: float) -> GridAction | None:
    """The action a lifecycle event calls for, if any (`arbitrate` still lacks its department: the
    caller fills it in from the case's last return)."""
    dims, to = event["dimensions"], event["to_state"]
    grid = dims.get("grid") or dims.get("community") or "321003"
    actor = {"kind": "staff", "id": f"{grid}/worker", "display": "网格员"}
    # Verification is someone else's (dispatch refuses the resolver's own): the community's checker.
    checker = {"kind": "staff", "id": f"{dims.get('community') or grid}/checker", "display": "核查员"}
    key = f"sim-grid:{event['event_id']}"
    at = datetime.now(UTC)
    if to == "registered" and dims.get("department") is None and dims.get("tier") in ("grid", "community"):
        body = {
            "actor": actor,
            "note": "网格员现场处置完毕。",
            "evidence": [evidence(event["case_id"], "self", at)["ref"]],
        }
        return GridAction(event["case_id"], "self_handle", body, key)
    if to == "resolved":
        if rng.random() < rework_rate:
            body = {"actor": checker, "reason": "verify.failed", "note": "现场核查未整改到位，返工。"}
            return GridAction(event["case_id"], "rework", body, key)
        return GridAction(event["case_id"], "verify", {"actor": checker, "note": "现场核查通过。"}, key)
    if to == "returned":
        centre = {"kind": "staff", "id": "zhihui/operator", "display": "指挥中心"}
        return GridAction(
            event["case_id"], "arbitrate", {"actor": centre, "reason": "arbitration.suggested"}, key
        )
    return None
