"""The dispatch desk: every way a case changes (a case event, a department's feedback, an operator's
action, a deadline falling due) goes through here, one database transaction per change.

Contract: idempotent per message key (store.MessageKey): a case event's `event_id` from intake, a
feedback's `feedback_id` per department, an operator's Idempotency-Key per operator: a repeat
returns the first outcome and changes nothing. A refused command changes nothing but is remembered
as refused, in its sender's namespace only; a message its sender was not entitled to send (a case
unknown, an order not live or not the sender's) claims nothing, so it cannot reserve an id. The directory (routing rules, SLAs, departments) is read from the registry view at the
moment of the decision, and the decision records the versions it used.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch import store
from dispatch.domain.case import Case, Outcome, Refused
from dispatch.domain.clock import Clock
from dispatch.domain.facts import CaseFacts, Feedback
from dispatch.domain.lifecycle import Command, Lifecycle
from dispatch.domain.states import Action
from dispatch.store import MessageKey
from onegrid import telemetry

log = logging.getLogger(__name__)

FEEDBACK_ACTIONS = {
    "acknowledge": Action.ACKNOWLEDGE,
    "progress": Action.PROGRESS,
    "resolve": Action.RESOLVE,
    "return": Action.RETURN,
}


# Refusals saying the sender had no business sending the message: no such case, or an order that
# is not live or not the sender's. They are answered but claim nothing (see the module docstring).
UNENTITLED = frozenset({"transition.case_unknown", "feedback.unknown_order", "feedback.department_mismatch"})


@dataclass(frozen=True)
class Result:
    """`outcome` is `applied`, `duplicate:<first outcome>` or `refused:<reason>`."""

    outcome: str
    case: Case | None = None
    detail: str | None = None

    @property
    def applied(self) -> bool:
        return self.outcome == "applied"


@dataclass
class Desk:
    engine: AsyncEngine
    lifecycle: Callable[[], Lifecycle]  # built from the registry view's current records
    clock: Clock
    outlets: store.Outlets
    ensure_topic: Callable[[str], Awaitable[None]]
    on_commit: Callable[[], None] = lambda: None  # wakes the outbox relay

    @staticmethod
    def case_key(facts: CaseFacts) -> MessageKey:
        return MessageKey("case", "intake", str(facts.event_id))

    @staticmethod
    def feedback_key(fb: Feedback) -> MessageKey:
        return MessageKey("feedback", fb.department, str(fb.feedback_id))

    @staticmethod
    def action_key(caller: str, idempotency_key: str) -> MessageKey:
        return MessageKey("action", caller, idempotency_key)

    async def case_event(self, facts: CaseFacts) -> Result:
        """cases.v1: case.reported registers (and routes); case.cancelled cancels; others are noted."""
        if facts.event_type == "case.reported":
            return await self._apply(self.case_key(facts), str(facts.case_id), None, facts=facts)
        if facts.event_type == "case.cancelled":
            cmd = Command(Action.CANCEL, reason="intake.cancelled")
            return await self._apply(self.case_key(facts), str(facts.case_id), cmd)
        # amended / linked: facts dispatch does not act on; remember them so a repeat is a no-op
        async with self.engine.begin() as conn:
            fresh = await store.claim_message(
                conn, self.case_key(facts), str(facts.case_id), "noted", self.clock.now()
            )
        return Result("applied" if fresh else "duplicate:noted")

    async def feedback(self, fb: Feedback) -> Result:
        cmd = Command(
            FEEDBACK_ACTIONS[fb.kind],
            actor=fb.actor,
            note=fb.note,
            department=fb.department,
            order_id=str(fb.order_id),
            evidence=len(fb.evidence),
            return_reason=fb.return_reason,
        )
        return await self._apply(self.feedback_key(fb), str(fb.case_id), cmd)

    async def act(self, case_id: str, cmd: Command, key: MessageKey | None = None) -> Result:
        """An operator's or grid worker's action; `key` (its Idempotency-Key, `action_key`) makes it
        repeatable."""
        return await self._apply(key, case_id, cmd)

    async def fire_deadline(self, deadline_id: str, case_id: str) -> str:
        """Fire one due deadline exactly once: `fired`, `busy` (the case is locked by someone else, try
        later), `settled` (already fired or cleared) or `refused:<reason>`."""
        now = self.clock.now()
        async with self.engine.begin() as conn:
            case = await store.lock_case(conn, case_id, skip_locked=True)
            if case is None:
                return "busy"
            status = await conn.scalar(
                text("SELECT status FROM deadlines WHERE deadline_id = :d FOR UPDATE"), {"d": deadline_id}
            )
            if status != "running":
                return "settled"
            try:
                out = self.lifecycle().fire(case, deadline_id, now)
            except Refused as r:
                await conn.execute(
                    text(
                        "UPDATE deadlines SET status = CASE WHEN :r = 'deadline.stale' THEN 'cleared' ELSE 'refused' END, "
                        "settled_at = :now, detail = :r WHERE deadline_id = :d"
                    ),
                    {"r": r.reason, "now": now, "d": deadline_id},
                )
                return f"refused:{r.reason}"
            await self._ensure_order_topics(out)
            await store.save(conn, case, out, now, self.outlets)
        self.on_commit()
        self._count(out)
        return "fired"

    async def _apply(
        self,
        message_id: MessageKey | None,
        case_id: str,
        cmd: Command | None,
        *,
        facts: CaseFacts | None = None,
    ) -> Result:
        now = self.clock.now()
        async with self.engine.begin() as conn:
            case = await store.lock_case(conn, case_id)
            if message_id is not None:
                first = await store.previous_outcome(conn, message_id, case_id)
                if first is not None:
                    return Result(f"duplicate:{first}", case)
            try:
                if facts is not None and case is None:
                    out = self.lifecycle().register(facts, now)
                elif cmd is None:
                    raise Refused("transition.already_registered", f"case {case_id} is already registered")
                else:
                    out = self.lifecycle().decide(case, cmd, now)
            except Refused as r:
                if message_id is not None and r.reason not in UNENTITLED:
                    await store.claim_message(conn, message_id, case_id, f"refused:{r.reason}", now)
                return Result(f"refused:{r.reason}", case, r.detail)
            # A concurrent instance with the same message (a rebalance mid-batch) waits here on the
            # primary key until the first commits, then finds it claimed.
            if message_id is not None and not await store.claim_message(
                conn, message_id, case_id, "applied", now
            ):
                return Result("duplicate:applied", case)
            # First order to a department: a broker round trip under the case lock, once per topic.
            await self._ensure_order_topics(out)
            await store.save(conn, case, out, now, self.outlets)
        self.on_commit()
        self._count(out)
        return Result("applied", out.case)

    def _count(self, out: Outcome) -> None:
        """Committed transitions: whistles (to escalated), returns, and deadlines that fired (SLA
        breaches: `deadline="true"`) are what the loop's dashboard and alerts watch."""
        for t in out.transitions:
            self._m_transitions.add(
                1,
                {
                    "action": t.action.value,
                    "to_state": t.to_state.value,
                    "deadline": "true" if t.deadline_id else "false",
                },
            )

    def _order_topics(self, out: Outcome) -> list[str]:
        return sorted({self.outlets.orders_for(o.department) for o in out.orders})

    async def _ensure_order_topics(self, out: Outcome) -> None:
        for t in self._order_topics(out):
            if t not in self._known_topics:
                await self.ensure_topic(t)
                self._known_topics.add(t)

    def __post_init__(self) -> None:
        self._known_topics: set[str] = set()
        self._m_transitions = telemetry.meter("dispatch").create_counter(
            "dispatch_transitions", description="committed case transitions by action and new state"
        )
