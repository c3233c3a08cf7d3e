"""One input for the desk with several messages of one case, as a consumer batch may hold them:
registrations, a note, feedback (one repeated), a refused feedback, a return, a cancellation and a
repeated case event. Applied one change per unit of work, or all in one unit, it must leave the
same rows. Used by the unit test (in memory) and the integration test (PostgreSQL).

Self-contained (no relative imports): the integration test loads it by path with `sample.py`."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

from dispatch.desk import Change, Desk, Result
from dispatch.domain.facts import decode_case, decode_feedback
from dispatch.domain.lifecycle import Lifecycle, Policy
from dispatch.domain.routing import Directory
from dispatch.store import Outlets, Repository, Webhook

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
OUTLETS = Outlets(
    lifecycle_topic="t.lifecycle",
    orders_topic="t.orders.{department}",
    webhooks={"hj-urban-mgmt": Webhook("http://127.0.0.1:9/orders", "secret")},
)


class StepClock:
    """A second later at every reading, the same sequence in every run."""

    def __init__(self) -> None:
        self.t = T0

    def now(self) -> datetime:
        self.t += timedelta(seconds=1)
        return self.t


def seeded_uuid4(seed: int) -> Callable[[], uuid.UUID]:
    rnd = random.Random(seed)
    return lambda: uuid.UUID(int=rnd.getrandbits(128), version=4)


def desk(repository: Repository, sample: ModuleType) -> Desk:
    records = sample.as_records(sample.registry_records())

    async def no_topic(_name: str) -> None:
        return None

    return Desk(
        repository=repository,
        lifecycle=lambda: Lifecycle(Directory(records), Policy(reopen_window_s=86400, arbitration_s=3600)),
        clock=StepClock(),
        outlets=OUTLETS,
        ensure_topic=no_topic,
    )


def _id(n: int) -> str:
    return str(uuid.UUID(int=n, version=4))


def feedback(case_id: str, order_id: str, kind: str, n: int, department: str, **kw: Any) -> Change:
    fb = {
        "feedback_id": _id(1000 + n),
        "order_id": order_id,
        "case_id": case_id,
        "department": department,
        "kind": kind,
        "at": "2026-03-01T02:30:00Z",
        "actor": {"kind": "department", "id": department, "display": department},
        "note": None,
        "evidence": [
            {"ref": "evidence/x.jpg", "media_type": "image/jpeg", "sha256": "0" * 64, "taken_at": None}
        ]
        if kind == "resolve"
        else [],
        "return_reason": kw.get("return_reason"),
    }
    return Desk.of_feedback(decode_feedback(json.dumps(fb).encode()))


class Scenario:
    """`first`: three registrations; `rest(orders)`: what follows, given the order each case got."""

    def __init__(self, sample: ModuleType) -> None:
        def event(n: int, **kw: Any) -> dict[str, Any]:
            ev: dict[str, Any] = sample.case_event(**kw)
            ev["event_id"] = _id(n)
            return ev

        self.x = event(1, category="city.street_vending", case_id=_id(101))
        self.y = event(2, category="env.air.exceedance", case_id=_id(102))
        self.z = event(3, category="city.street_vending", case_id=_id(103))
        self.amended_x = event(4, event_type="case.amended", case_id=self.x["case_id"])
        self.cancelled_y = event(5, event_type="case.cancelled", case_id=self.y["case_id"])

    @staticmethod
    def case(ev: dict[str, Any]) -> Change:
        return Desk.of_case_event(decode_case(json.dumps(ev).encode()))

    def first(self) -> list[Change]:
        return [self.case(self.x), self.case(self.y), self.case(self.z)]

    def rest(self, orders: dict[str, tuple[str, str]]) -> list[Change]:
        """`orders`: case id -> (order id, department) of its first order."""
        x, y, z = (orders[e["case_id"]] for e in (self.x, self.y, self.z))
        xid, yid, zid = self.x["case_id"], self.y["case_id"], self.z["case_id"]
        ack = feedback(xid, x[0], "acknowledge", 1, x[1])
        return [
            self.case(self.amended_x),
            ack,
            ack,  # the same feedback again: a repeat
            feedback(xid, x[0], "resolve", 2, x[1]),
            feedback(yid, _id(999), "acknowledge", 3, y[1]),  # an order never sent: refused
            feedback(
                zid,
                z[0],
                "return",
                4,
                z[1],
                return_reason={
                    "code": "return.not_our_duty",
                    "suggested_department": None,
                    "detail": "非本部门",
                },
            ),
            self.case(self.cancelled_y),
            self.case(self.x),  # the registration again: a repeat
        ]


async def run(
    desk_: Desk, scenario: Scenario, *, batched: bool, orders: dict[str, tuple[str, str]] | None
) -> tuple[list[Result], dict[str, tuple[str, str]]]:
    """Apply the scenario one change per unit, or (batched) in one unit; the results and the first
    orders. A batched run needs the orders of a run before it (ids are seeded alike in both)."""
    if not batched:
        results = [(await desk_.apply([c]))[0] for c in scenario.first()]
        found = {
            r.case.case_id: (r.case.orders[0].order_id, r.case.orders[0].department)
            for r in results
            if r.case is not None
        }
        results += [(await desk_.apply([c]))[0] for c in scenario.rest(found)]
        return results, found
    assert orders is not None
    return await desk_.apply([*scenario.first(), *scenario.rest(orders)]), orders


def outcomes(results: list[Result]) -> list[str]:
    return [r.outcome for r in results]
