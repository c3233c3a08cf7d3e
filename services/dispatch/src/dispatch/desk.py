"""The dispatch desk: every way a case changes (a case event, a department's feedback, an operator's
action, a deadline falling due) goes through here.

Contract: idempotent per message id (a case event's `event_id`, a feedback's `feedback_id`): a repeat
returns the first outcome and changes nothing. A refused command changes nothing but is remembered
as refused. The directory (routing rules, SLAs, departments) is read from the registry view when a
unit of work starts, and each decision records the versions it used.

Units of work: `apply` takes any number of changes (a consumer batch) in one transaction of the
repository (store.Repository): the cases they touch are locked and read once, the changes are decided
in memory in the order given (several changes of one case follow each other there exactly as they
would one transaction apiece) and everything is written at once. The rows are those of one
transaction per change. A message another instance processed meanwhile (a rebalance mid-batch) makes
the unit start again from fresh reads, where it shows as a repeat.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from dispatch.domain.case import Case, Outcome, Refused
from dispatch.domain.clock import Clock
from dispatch.domain.facts import CaseFacts, Feedback
from dispatch.domain.lifecycle import Command, Lifecycle
from dispatch.domain.states import Action
from dispatch.store import Changes, Headers, Outlets, Repository
from onegrid import telemetry

log = logging.getLogger(__name__)

FEEDBACK_ACTIONS = {
    "acknowledge": Action.ACKNOWLEDGE,
    "progress": Action.PROGRESS,
    "resolve": Action.RESOLVE,
    "return": Action.RETURN,
}
# A unit that meets another instance's claim starts again this many times before it gives up.
ATTEMPTS = 5


@dataclass(frozen=True)
class Result:
    """`outcome` is `applied`, `duplicate:<first outcome>` or `refused:<reason>`."""

    outcome: str
    case: Case | None = None
    detail: str | None = None

    @property
    def applied(self) -> bool:
        return self.outcome == "applied"


@dataclass(frozen=True)
class Change:
    """One message for the desk: register `facts` (a case.reported), note them (`note`: amended,
    linked: facts dispatch does not act on) or apply `command`. `trace`: the trace context (headers)
    its lifecycle events, orders and deliveries continue."""

    message_id: str | None
    case_id: str
    command: Command | None = None
    facts: CaseFacts | None = None
    note: bool = False
    trace: Headers = ()


class Raced(Exception):
    """Another instance committed one of the unit's messages first."""


@dataclass
class Desk:
    repository: Repository
    lifecycle: Callable[[], Lifecycle]  # built from the registry view's current records
    clock: Clock
    outlets: Outlets
    ensure_topic: Callable[[str], Awaitable[None]]
    on_commit: Callable[[], None] = lambda: None  # wakes the outbox relay

    @staticmethod
    def of_case_event(facts: CaseFacts, trace: Headers = ()) -> Change:
        """cases.v1: case.reported registers (and routes); case.cancelled cancels; others are noted."""
        event_id, case_id = str(facts.event_id), str(facts.case_id)
        if facts.event_type == "case.reported":
            return Change(event_id, case_id, facts=facts, trace=trace)
        if facts.event_type == "case.cancelled":
            return Change(event_id, case_id, Command(Action.CANCEL, reason="intake.cancelled"), trace=trace)
        return Change(event_id, case_id, facts=facts, note=True, trace=trace)

    @staticmethod
    def of_feedback(fb: Feedback, trace: Headers = ()) -> Change:
        cmd = Command(
            FEEDBACK_ACTIONS[fb.kind],
            actor=fb.actor,
            note=fb.note,
            department=fb.department,
            order_id=str(fb.order_id),
            evidence=len(fb.evidence),
            return_reason=fb.return_reason,
        )
        return Change(str(fb.feedback_id), str(fb.case_id), cmd, trace=trace)

    async def case_event(self, facts: CaseFacts) -> Result:
        return (await self.apply([self.of_case_event(facts, _current_trace())]))[0]

    async def feedback(self, fb: Feedback) -> Result:
        return (await self.apply([self.of_feedback(fb, _current_trace())]))[0]

    async def act(self, case_id: str, cmd: Command, message_id: str | None = None) -> Result:
        """An operator's or grid worker's action; `message_id` (an Idempotency-Key) makes it repeatable."""
        return (await self.apply([Change(message_id, case_id, cmd, trace=_current_trace())]))[0]

    async def apply(self, changes: Sequence[Change]) -> list[Result]:
        """Apply `changes` in order in one unit of work; one result per change."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await self._apply_once(changes)
            except Raced:
                if attempt == ATTEMPTS:
                    raise
                log.info("a message of this unit was processed elsewhere meanwhile: starting again")
        raise AssertionError("unreachable")

    async def _apply_once(self, changes: Sequence[Change]) -> list[Result]:
        lifecycle = self.lifecycle()
        out = Changes()
        outcomes: list[Outcome] = []
        results: list[Result] = []
        async with self.repository.unit() as unit:
            cases = await unit.lock_cases(sorted({c.case_id for c in changes if not c.note}))
            seen = await unit.outcomes(sorted({c.message_id for c in changes if c.message_id is not None}))
            for change in changes:
                results.append(self._decide(change, lifecycle, cases, seen, out, outcomes))
            # A concurrent instance with the same message waits here on the primary key until the
            # first commits, then finds it claimed: this unit then starts again from fresh reads.
            if len(await unit.claim(out.processed)) != len(out.processed):
                raise Raced()
            # First order to a department: a broker round trip under the case locks, once per topic.
            await self._ensure_order_topics(out)
            await unit.write(out)
        if out:
            self.on_commit()
        self._count(outcomes)
        return results

    def _decide(
        self,
        change: Change,
        lifecycle: Lifecycle,
        cases: dict[str, Case],
        seen: dict[str, str],
        out: Changes,
        outcomes: list[Outcome],
    ) -> Result:
        """One change against the cases as the unit holds them so far (updated in place)."""
        now = self.clock.now()
        mid, case_id = change.message_id, change.case_id
        if change.note:
            assert mid is not None
            if mid in seen:
                return Result("duplicate:noted")
            seen[mid] = "noted"
            out.claim(mid, case_id, "noted", now)
            return Result("applied")
        case = cases.get(case_id)
        if mid is not None and mid in seen:
            return Result(f"duplicate:{seen[mid]}", case)
        try:
            if change.facts is not None and case is None:
                outcome = lifecycle.register(change.facts, now)
            elif change.command is None:
                raise Refused("transition.already_registered", f"case {case_id} is already registered")
            else:
                outcome = lifecycle.decide(case, change.command, now)
        except Refused as r:
            if mid is not None:
                seen[mid] = f"refused:{r.reason}"
                out.claim(mid, case_id, seen[mid], now)
            return Result(f"refused:{r.reason}", case, r.detail)
        if mid is not None:
            seen[mid] = "applied"
            out.claim(mid, case_id, "applied", now)
        out.add(case, outcome, now, self.outlets, change.trace)
        cases[case_id] = outcome.case
        outcomes.append(outcome)
        return Result("applied", outcome.case)

    async def fire_deadline(self, deadline_id: str, case_id: str) -> str:
        """Fire one due deadline exactly once: `fired`, `busy` (the case is locked by someone else, try
        later), `settled` (already fired or cleared) or `refused:<reason>`."""
        now = self.clock.now()
        out = Changes()
        async with self.repository.unit() as unit:
            case = (await unit.lock_cases([case_id], skip_locked=True)).get(case_id)
            if case is None:
                return "busy"
            if await unit.deadline_status(deadline_id) != "running":
                return "settled"
            try:
                outcome = self.lifecycle().fire(case, deadline_id, now)
            except Refused as r:
                await unit.refuse_deadline(deadline_id, r.reason, now)
                return f"refused:{r.reason}"
            out.add(case, outcome, now, self.outlets, _current_trace())
            await self._ensure_order_topics(out)
            await unit.write(out)
        self.on_commit()
        self._count([outcome])
        return "fired"

    def _count(self, outcomes: Sequence[Outcome]) -> None:
        """Committed transitions: whistles (to escalated), returns, and deadlines that fired (SLA
        breaches: `deadline="true"`) are what the loop's dashboard and alerts watch. Counted once per
        unit of work."""
        counts = Counter(
            (t.action.value, t.to_state.value, "true" if t.deadline_id else "false")
            for out in outcomes
            for t in out.transitions
        )
        for (action, to_state, deadline), n in counts.items():
            self._m_transitions.add(n, {"action": action, "to_state": to_state, "deadline": deadline})

    async def _ensure_order_topics(self, out: Changes) -> None:
        for t in out.order_topics(self.outlets):
            if t not in self._known_topics:
                await self.ensure_topic(t)
                self._known_topics.add(t)

    def __post_init__(self) -> None:
        self._known_topics: set[str] = set()
        self._m_transitions = telemetry.meter("dispatch").create_counter(
            "dispatch_transitions", description="committed case transitions by action and new state"
        )


def _current_trace() -> Headers:
    """The current trace context as headers (none outside a span)."""
    return tuple(telemetry.inject([]))
