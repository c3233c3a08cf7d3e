"""The dispatch desk: every way a case changes (a case event, a department's feedback, an operator's
action, a deadline falling due) goes through here.

Contract: idempotent per message key (store.MessageKey): a case event's `event_id` from intake, a
feedback's `feedback_id` per department, an operator's Idempotency-Key per operator: a repeat
returns the first outcome and changes nothing. A refused command changes nothing but is remembered
as refused, in its sender's namespace only; a message its sender was not entitled to send (a case
unknown, an order not live or not the sender's) claims nothing, so it cannot reserve an id. The directory (routing rules, SLAs, departments) is read from the registry view when a
unit of work starts, and each decision records the versions it used.

Units of work: `apply` takes any number of changes (a consumer batch) in one transaction of the
repository (store.Repository): the cases they touch are locked and read once, the changes are decided
in memory in the order given (several changes of one case follow each other there exactly as they
would one transaction apiece) and everything is written at once. The rows are those of one
transaction per change. A message another instance processed meanwhile (a rebalance mid-batch) makes
the unit start again from fresh reads, where it shows as a repeat. A large batch is split by case into
`lanes` units that run at once on their own connections (PostgreSQL executes one while Python decides
the next); a lane that fails fails the batch, whose redelivery finds the other lanes' messages
processed.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch.domain.case import Case, Outcome, Refused
from dispatch.domain.clock import Clock
from dispatch.domain.facts import CaseFacts, Feedback
from dispatch.domain.lifecycle import Command, Lifecycle
from dispatch.domain.states import Action
from dispatch.pg import PgRepository
from dispatch.store import Changes, Headers, MessageKey, Outlets, Processed, Repository, first_outcome
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
# A batch is split into lanes only when each lane would hold at least this many changes: below it a
# second unit's round trips cost more than the overlap saves.
LANE_MIN = 32
# Changes decided between two turns of the event loop (~200 µs each: a few milliseconds a slice).
DECIDE_SLICE = 16
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


@dataclass(frozen=True)
class Change:
    """One message for the desk: register `facts` (a case.reported), note them (`note`: amended,
    linked: facts dispatch does not act on) or apply `command`. `trace`: the trace context (headers)
    its lifecycle events, orders and deliveries continue."""

    key: MessageKey | None
    case_id: str
    command: Command | None = None
    facts: CaseFacts | None = None
    note: bool = False
    trace: Headers = ()


class Raced(Exception):
    """Another instance committed one of the unit's messages first."""


@dataclass(kw_only=True)
class Desk:
    lifecycle: Callable[[], Lifecycle]  # built from the registry view's current records
    # This instance's own clock. Decisions never read it: due times and stamps are the database's
    # (Unit.now), the one clock every instance shares.
    clock: Clock
    outlets: Outlets
    ensure_topic: Callable[[str], Awaitable[None]]
    on_commit: Callable[[], None] = lambda: None  # wakes the outbox relay
    # Where decisions are kept: `repository`, else PostgreSQL on `engine` (dispatch.pg).
    engine: AsyncEngine | None = None
    repository: Repository | None = None
    # Units of work a large batch is split into, run concurrently (on as many connections): one
    # unit's statements execute in PostgreSQL while the next unit is decided in Python.
    lanes: int = 2

    @staticmethod
    def case_key(facts: CaseFacts) -> MessageKey:
        return MessageKey("case", "intake", str(facts.event_id))

    @staticmethod
    def feedback_key(fb: Feedback) -> MessageKey:
        return MessageKey("feedback", fb.department, str(fb.feedback_id))

    @staticmethod
    def action_key(caller: str, idempotency_key: str) -> MessageKey:
        return MessageKey("action", caller, idempotency_key)

    @classmethod
    def of_case_event(cls, facts: CaseFacts, trace: Headers = ()) -> Change:
        """cases.v1: case.reported registers (and routes); case.cancelled cancels; others are noted."""
        key, case_id = cls.case_key(facts), str(facts.case_id)
        if facts.event_type == "case.reported":
            return Change(key, case_id, facts=facts, trace=trace)
        if facts.event_type == "case.cancelled":
            return Change(key, case_id, Command(Action.CANCEL, reason="intake.cancelled"), trace=trace)
        return Change(key, case_id, facts=facts, note=True, trace=trace)

    @classmethod
    def of_feedback(cls, fb: Feedback, trace: Headers = ()) -> Change:
        cmd = Command(
            FEEDBACK_ACTIONS[fb.kind],
            actor=fb.actor,
            note=fb.note,
            department=fb.department,
            order_id=str(fb.order_id),
            evidence=len(fb.evidence),
            # the refs name each file's hash: the lifecycle event, the audit trail and the case page
            # show the department's evidence, not only how much there was
            evidence_refs=tuple(e.ref for e in fb.evidence),
            return_reason=fb.return_reason,
        )
        return Change(cls.feedback_key(fb), str(fb.case_id), cmd, trace=trace)

    async def case_event(self, facts: CaseFacts) -> Result:
        return (await self.apply([self.of_case_event(facts, _current_trace())]))[0]

    async def feedback(self, fb: Feedback) -> Result:
        return (await self.apply([self.of_feedback(fb, _current_trace())]))[0]

    async def act(self, case_id: str, cmd: Command, key: MessageKey | None = None) -> Result:
        """An operator's or grid worker's action; `key` (its Idempotency-Key, `action_key`) makes it
        repeatable."""
        return (await self.apply([Change(key, case_id, cmd, trace=_current_trace())]))[0]

    async def apply(self, changes: Sequence[Change]) -> list[Result]:
        """Apply `changes` in order; one result per change. A large batch is split by case into
        `lanes` units of work that run concurrently (see `lanes_of`), a small one is one unit."""
        lanes = lanes_of(changes, self.lanes if len(changes) >= LANE_MIN * 2 else 1)
        if len(lanes) == 1:
            return await self._apply_unit(changes)
        done = await asyncio.gather(
            *(self._apply_unit([changes[i] for i in lane]) for lane in lanes), return_exceptions=True
        )
        failed = next((d for d in done if isinstance(d, BaseException)), None)
        if failed is not None:
            # The lanes that committed are kept; the caller's retry finds their messages processed.
            raise failed
        results: list[Result | None] = [None] * len(changes)
        for lane, lane_results in zip(lanes, done, strict=True):
            assert not isinstance(lane_results, BaseException)
            for i, r in zip(lane, lane_results, strict=True):
                results[i] = r
        return [r for r in results if r is not None]

    async def _apply_unit(self, changes: Sequence[Change]) -> list[Result]:
        """Apply `changes` in order in one unit of work."""
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
        async with self._repository.unit() as unit:
            cases = await unit.lock_cases(sorted({c.case_id for c in changes if not c.note}))
            now = await unit.now()
            known = await unit.processed(sorted({c.key.id for c in changes if c.key is not None}))
            seen: dict[MessageKey, str] = {}
            # One unit decides at a time (lanes in turn: the first lane's statements run in
            # PostgreSQL while the next is decided), handing the event loop back between slices.
            async with self._deciding:
                for i, change in enumerate(changes):
                    if i and i % DECIDE_SLICE == 0:
                        await asyncio.sleep(0)
                    results.append(self._decide(change, now, lifecycle, cases, known, seen, out, outcomes))
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
        now: datetime,
        lifecycle: Lifecycle,
        cases: dict[str, Case],
        known: list[Processed],
        seen: dict[MessageKey, str],
        out: Changes,
        outcomes: list[Outcome],
    ) -> Result:
        """One change against the cases as the unit holds them so far (updated in place); `known`:
        what the database had processed under the unit's message ids, `seen`: what this unit has;
        `now`: the database's clock (Unit.now)."""
        mid, case_id = change.key, change.case_id
        if change.note:
            assert mid is not None
            if mid in seen or any(p.key == mid for p in known):
                return Result("duplicate:noted")
            seen[mid] = "noted"
            out.claim(mid, case_id, "noted", now)
            return Result("applied")
        case = cases.get(case_id)
        if mid is not None:
            first = seen.get(mid) or first_outcome(known, mid, case_id)
            if first is not None:
                return Result(f"duplicate:{first}", case)
        try:
            if change.facts is not None and case is None:
                outcome = lifecycle.register(change.facts, now)
            elif change.command is None:
                raise Refused("transition.already_registered", f"case {case_id} is already registered")
            else:
                outcome = lifecycle.decide(case, change.command, now)
        except Refused as r:
            if mid is not None and r.reason not in UNENTITLED:
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
        later), `settled` (already fired or cleared), `not_due` (by the database's clock) or
        `refused:<reason>`."""
        out = Changes()
        async with self._repository.unit() as unit:
            case = (await unit.lock_cases([case_id], skip_locked=True)).get(case_id)
            if case is None:
                return "busy"
            if await unit.deadline_status(deadline_id) != "running":
                return "settled"
            now = await unit.now()
            running = next((d for d in case.deadlines if d.deadline_id == deadline_id), None)
            if running is not None and running.due_at > now:
                return "not_due"
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
        if self.repository is None:
            if self.engine is None:
                raise ValueError("a desk needs a repository or an engine")
            self.repository = PgRepository(self.engine)
        self._repository: Repository = self.repository
        self._known_topics: set[str] = set()
        self._deciding = asyncio.Lock()
        self._m_transitions = telemetry.meter("dispatch").create_counter(
            "dispatch_transitions", description="committed case transitions by action and new state"
        )


def lanes_of(changes: Sequence[Change], lanes: int) -> list[list[int]]:
    """The positions of `changes` in `lanes` groups by case (a case's changes keep their order in
    one group, and no two groups touch one case), empty groups left out. Split this way, the groups'
    units of work lock disjoint cases and claim disjoint messages (a message names its case), so
    they neither wait on nor race each other, and each change sees exactly what it would see in a
    single unit. (A sender reusing a message id for another case is settled by the claim, as
    between instances: one unit waits for the other's commit, finds the id taken and starts again.)"""
    if lanes <= 1:
        return [list(range(len(changes)))]
    groups: list[list[int]] = [[] for _ in range(lanes)]
    for i, c in enumerate(changes):
        groups[zlib.crc32(c.case_id.encode()) % lanes].append(i)
    return [g for g in groups if g]


def _current_trace() -> Headers:
    """The current trace context as headers (none outside a span)."""
    return tuple(telemetry.inject([]))
