"""Decisions on a case: a command in, an Outcome (new case, transitions, orders) out, or `Refused`.

Contract: pure and deterministic apart from fresh ids; the caller persists the Outcome atomically
(case row, transitions, deadlines, outbox) or not at all. The legality of (state, action) comes from
`states.TRANSITIONS`; the guards here add what the table cannot know (the order answered is live, a
resolve carries evidence, a return carries a reason, a reopen is inside its window, ...).

Deadlines: every state in `states.WORKING` runs at least one deadline, except an escalated case at the
top tier (nobody left to whistle to: it stays on the city command centre's overdue list). A resolved
case runs its verification deadline (核查); overdue, the verification climbs to the next tier's
command centre with a fresh one, up to the top tier, where it stays on the overdue list. Suspending
or merging pauses the deadlines (their remaining time is kept); resuming or unmerging re-arms them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec

from dispatch.domain.case import (
    SYSTEM,
    Case,
    Counters,
    Outcome,
    PausedDeadline,
    Refused,
)
from dispatch.domain.effects import Draft, arm, send_orders, verification
from dispatch.domain.facts import Actor, CaseFacts, ReturnReason
from dispatch.domain.routing import TIERS, Directory
from dispatch.domain.states import RETURN_TO_PREVIOUS, Action, State, refusal, target

A, S = Action, State


@dataclass(frozen=True)
class Policy:
    reopen_window_s: float = 7 * 86400
    arbitration_s: float = 4 * 3600


@dataclass(frozen=True)
class Command:
    action: Action
    actor: Actor = SYSTEM
    reason: str | None = None
    note: str | None = None
    department: str | None = None  # dispatch, reassign, arbitrate; the answering department on feedback
    order_id: str | None = None  # feedback: the order answered
    evidence: int = 0  # evidence references attached (resolve, self_handle)
    evidence_refs: tuple[str, ...] = ()  # the references themselves, when the caller gave them
    merge_into: str | None = None
    deadline_id: str | None = None
    return_reason: ReturnReason | None = None


@dataclass
class Lifecycle:
    directory: Directory
    policy: Policy = field(default_factory=Policy)

    def register(self, facts: CaseFacts, now: datetime, actor: Actor = SYSTEM) -> Outcome:
        """立案 and, when routing finds a department, 派遣 in the same outcome. A patrol report is
        registered in its grid worker's name (the worker's 考核 counts it)."""
        if actor is SYSTEM:
            actor = facts.reporter() or SYSTEM
        decision = self.directory.route(facts)
        blank = Case(
            case_id=str(facts.case_id),
            state=S.REGISTERED,
            facts=facts,
            tier=decision.tier,
            routing=decision,
            sla=decision.sla,
            registered_at=now,
        )
        d = Draft(blank)
        resolve = arm(blank, now, resolve=decision.sla.resolve_s)
        reason = None if decision.self_handle or decision.departments else "routing.no_department"
        d.move(S.REGISTERED, A.REGISTER, actor, now, reason=reason, deadlines=resolve)
        d.case = d.replace(first_resolve_by=resolve[0].due_at)
        if decision.departments and not decision.self_handle:
            send_orders(d, A.DISPATCH, decision.departments, decision.order_kind, SYSTEM, now, None)
        return msgspec.structs.replace(d.outcome(), decision=decision, rule_set=self.directory.rule_set())

    def decide(self, case: Case | None, cmd: Command, now: datetime) -> Outcome:
        """Apply `cmd` to `case`; raises Refused naming why an action is illegal or invalid."""
        state = case.state if case else None
        to = target(state, cmd.action)
        if to is None or case is None:
            raise Refused(
                refusal(state, cmd.action), f"{cmd.action.value} is not allowed when the case is {state}"
            )
        d = Draft(case, deadline_id=cmd.deadline_id, evidence=cmd.evidence_refs)
        self._handlers()[cmd.action](d, cmd, now, to)
        return d.outcome()

    def fire(self, case: Case, deadline_id: str, now: datetime) -> Outcome:
        """A deadline fell due: 吹哨 for acknowledge/resolve, 属地兜底 for arbitrate, the next tier's
        verification for verify. Raises Refused
        (reason `deadline.stale`) when the case no longer runs that deadline."""
        dl = next((x for x in case.deadlines if x.deadline_id == deadline_id), None)
        if dl is None:
            raise Refused("deadline.stale", f"deadline {deadline_id} is no longer running")
        if dl.kind == "arbitrate":
            cmd = Command(A.ARBITRATE, reason="arbitration.timeout", deadline_id=deadline_id)
        elif dl.kind == "verify":
            cmd = Command(A.ESCALATE_VERIFICATION, reason="sla.verify_overdue", deadline_id=deadline_id)
        else:
            cmd = Command(A.ESCALATE, reason=f"sla.{dl.kind}_overdue", deadline_id=deadline_id)
        return self.decide(case, cmd, now)

    # -- one handler per action ------------------------------------------------------------------

    def _handlers(self) -> dict[Action, Callable[[Draft, Command, datetime, State | str], None]]:
        return {
            A.DISPATCH: self._dispatch,
            A.REASSIGN: self._dispatch,
            A.ARBITRATE: self._arbitrate,
            A.SELF_HANDLE: self._self_handle,
            A.ACKNOWLEDGE: self._feedback,
            A.PROGRESS: self._feedback,
            A.RESOLVE: self._feedback,
            A.RETURN: self._feedback,
            A.ESCALATE: self._escalate,
            A.SUSPEND: self._pause,
            A.MERGE: self._pause,
            A.RESUME: self._unpause,
            A.UNMERGE: self._unpause,
            A.VERIFY: self._verify,
            A.ESCALATE_VERIFICATION: self._escalate_verification,
            A.CLOSE: self._close,
            A.REWORK: self._rework,
            A.REOPEN: self._reopen,
            A.CANCEL: self._cancel,
        }

    def _dispatch(self, d: Draft, cmd: Command, now: datetime, to: State | str) -> None:
        dept = self._department(cmd.department)
        if cmd.action is A.REASSIGN and dept == d.case.department and d.case.state is not S.RETURNED:
            raise Refused("reassign.same_department", f"the case is already with {dept}")
        send_orders(d, cmd.action, (dept,), "assign", cmd.actor, now, cmd.reason, cmd.note)

    def _arbitrate(self, d: Draft, cmd: Command, now: datetime, to: State | str) -> None:
        if cmd.department:
            dept, reason = self._department(cmd.department), cmd.reason
        else:
            unit = self.directory.territorial_unit(d.case.facts)
            if unit is None:
                raise Refused("routing.no_territorial_unit", "no command centre to fall back to (属地兜底)")
            dept, reason = unit, cmd.reason or "arbitration.territorial_fallback"
        send_orders(d, A.ARBITRATE, (dept,), "assign", cmd.actor, now, reason, cmd.note)

    def _self_handle(self, d: Draft, cmd: Command, now: datetime, to: State | str) -> None:
        # The policy in force when the worker acts decides (the app offers the action by it too).
        if not self.directory.allows_self_handle(d.case.facts):
            category = d.case.facts.category.code
            raise Refused(
                "self_handle.category_not_allowed",
                f"the SLA does not let a grid worker handle {category} on the spot: report it up (escalate)",
            )
        if cmd.evidence < 1:
            raise Refused("evidence.missing", "self-handling needs at least one evidence reference")
        d.move(
            S.RESOLVED,
            A.SELF_HANDLE,
            cmd.actor,
            now,
            cmd.reason,
            cmd.note,
            orders=(),
            resolved_by=actor_key(cmd.actor),
            **verification(d.case, now),
        )

    def _feedback(self, d: Draft, cmd: Command, now: datetime, to: State | str) -> None:
        order = next((o for o in d.case.orders if o.order_id == cmd.order_id), None)
        if order is None:
            raise Refused("feedback.unknown_order", f"order {cmd.order_id} is not live for this case")
        if cmd.department and cmd.department != order.department:
            raise Refused(
                "feedback.department_mismatch", f"order {order.order_id} went to {order.department}"
            )
        c = d.case
        if cmd.action in (A.ACKNOWLEDGE, A.PROGRESS):
            keep = tuple(x for x in c.deadlines if x.kind != "acknowledge")
            if not any(x.kind == "resolve" for x in keep):  # e.g. after a whistle at the top tier
                keep = arm(c, now, resolve=c.sla.resolve_s)
            dept = c.department or order.department
            d.move(
                State(str(to)),
                cmd.action,
                cmd.actor,
                now,
                cmd.reason,
                cmd.note,
                deadlines=keep,
                department=dept,
            )
        elif cmd.action is A.RESOLVE:
            if cmd.evidence < 1:
                raise Refused("evidence.missing", "a resolve needs at least one evidence reference")
            d.move(
                S.RESOLVED,
                A.RESOLVE,
                cmd.actor,
                now,
                cmd.reason,
                cmd.note,
                orders=(),
                resolved_by=actor_key(cmd.actor),
                **verification(d.case, now),
            )
        else:
            if order.kind != "assign":
                raise Refused("return.not_owner", f"a {order.kind} order cannot be returned")
            if cmd.return_reason is None:
                raise Refused("return.reason_missing", "a return needs a structured reason")
            d.move(
                S.RETURNED,
                A.RETURN,
                cmd.actor,
                now,
                cmd.return_reason.code,
                cmd.note or cmd.return_reason.detail,
                deadlines=arm(c, now, arbitrate=self.policy.arbitration_s),
                orders=(),
                last_return=cmd.return_reason,
                previous_department=c.department,
                counters=_bump(c.counters, returns=1),
            )

    def _escalate(self, d: Draft, cmd: Command, now: datetime, to: State | str) -> None:
        c = d.case
        tier, centre = self.directory.escalation(c.facts, c.tier)
        callees = [x for x in (centre, self.directory.supervisor(c.department)) if x]
        reason = cmd.reason or "operator.escalate"
        counters = _bump(c.counters, escalations=1)
        if centre is None:  # top tier: the case stays on the city command centre's overdue list
            d.move(S.ESCALATED, A.ESCALATE, cmd.actor, now, reason, cmd.note, deadlines=(), counters=counters)
            return
        old = c.deadline("resolve")
        keep_resolve = old is not None and old.due_at > now and not reason.startswith("sla.resolve")
        deadlines = arm(
            c, now, acknowledge=c.sla.acknowledge_s, resolve=None if keep_resolve else c.sla.resolve_s
        )
        if keep_resolve and old is not None:
            deadlines = (*deadlines, old)
        d.move(
            S.ESCALATED,
            A.ESCALATE,
            cmd.actor,
            now,
            reason,
            cmd.note,
            deadlines=deadlines,
            counters=counters,
            tier=max(tier, c.tier, key=TIERS.index),
            department=c.department or centre,
        )
        send_orders(d, None, tuple(dict.fromkeys(callees)), "whistle", cmd.actor, now, reason, add=True)

    def _pause(self, d: Draft, cmd: Command, now: datetime, to: State | str) -> None:
        c = d.case
        if not cmd.reason and cmd.action is A.SUSPEND:
            raise Refused("suspend.reason_missing", "a suspension needs a reason")
        if cmd.action is A.MERGE and (not cmd.merge_into or cmd.merge_into == c.case_id):
            raise Refused("merge.target_invalid", "merge needs another case to merge into")
        paused = tuple(
            PausedDeadline(kind=x.kind, remaining_s=max(0.0, (x.due_at - now).total_seconds()))
            for x in c.deadlines
        )
        d.move(
            State(str(to)),
            cmd.action,
            cmd.actor,
            now,
            cmd.reason or ("merge.duplicate" if cmd.action is A.MERGE else None),
            cmd.note,
            deadlines=(),
            paused=paused,
            previous_state=c.state,
            merged_into=cmd.merge_into if cmd.action is A.MERGE else None,
        )

    def _unpause(self, d: Draft, cmd: Command, now: datetime, to: State | str) -> None:
        c = d.case
        assert to == RETURN_TO_PREVIOUS and c.previous_state is not None
        fresh = Draft.rearm(c.paused, now)
        d.move(
            c.previous_state,
            cmd.action,
            cmd.actor,
            now,
            cmd.reason,
            cmd.note,
            deadlines=fresh,
            paused=(),
            previous_state=None,
            merged_into=None,
        )

    def _verify(self, d: Draft, cmd: Command, now: datetime, to: State | str) -> None:
        # 核查: the check is someone else's (another person, or the community), so no one closes
        # their own work alone by self-handling and then verifying it.
        if d.case.resolved_by is not None and d.case.resolved_by == actor_key(cmd.actor):
            raise Refused(
                "verify.same_actor", "the one who resolved a case cannot verify it; someone else must"
            )
        d.move(S.VERIFIED, A.VERIFY, cmd.actor, now, cmd.reason or "verify.passed", cmd.note)
        self._close(d, Command(A.CLOSE, actor=cmd.actor), now, S.CLOSED)

    def _escalate_verification(self, d: Draft, cmd: Command, now: datetime, to: State | str) -> None:
        # 核查 is the supervision's: an overdue check goes to the next tier up that has a command
        # centre, which the lifecycle event notifies (tier and verify_by in force); the handling
        # department and its counters stay as they are, the work itself is done.
        c = d.case
        tier, centre = self.directory.escalation(c.facts, c.tier)
        reason = cmd.reason or "operator.escalate_verification"
        if centre is None:  # top tier: stays on the city command centre's overdue list
            d.move(S.RESOLVED, A.ESCALATE_VERIFICATION, cmd.actor, now, reason, cmd.note, deadlines=())
            return
        fresh = verification(c, now)
        d.move(S.RESOLVED, A.ESCALATE_VERIFICATION, cmd.actor, now, reason, cmd.note, tier=tier, **fresh)

    def _close(self, d: Draft, cmd: Command, now: datetime, to: State | str) -> None:
        d.move(S.CLOSED, A.CLOSE, cmd.actor, now, cmd.reason, cmd.note, closed_at=now, deadlines=())

    def _rework(self, d: Draft, cmd: Command, now: datetime, to: State | str) -> None:
        c = d.case
        d.move(
            S.IN_PROGRESS,
            A.REWORK,
            cmd.actor,
            now,
            cmd.reason or "verify.failed",
            cmd.note,
            deadlines=arm(c, now, resolve=c.sla.resolve_s),
            counters=_bump(c.counters, reworks=1),
        )
        if c.department:
            send_orders(
                d, None, (c.department,), "assign", cmd.actor, now, "verify.failed", cmd.note, add=False
            )

    def _reopen(self, d: Draft, cmd: Command, now: datetime, to: State | str) -> None:
        c = d.case
        assert c.closed_at is not None
        if now > c.closed_at + timedelta(seconds=self.policy.reopen_window_s):
            raise Refused(
                "reopen.window_passed", f"closed at {c.closed_at.isoformat()}, beyond the reopen window"
            )
        d.move(
            S.REOPENED,
            A.REOPEN,
            cmd.actor,
            now,
            cmd.reason or "reopen.requested",
            cmd.note,
            deadlines=arm(c, now, resolve=c.sla.resolve_s),
            counters=_bump(c.counters, reopens=1),
            closed_at=None,
        )
        route = self.directory.route(c.facts)
        depts = (c.department,) if c.department else () if route.self_handle else route.departments
        if depts:
            send_orders(d, A.DISPATCH, depts, "assign", SYSTEM, now, "reopen.redispatch")

    def _cancel(self, d: Draft, cmd: Command, now: datetime, to: State | str) -> None:
        if not cmd.reason:
            raise Refused("cancel.reason_missing", "a cancellation needs a reason")
        d.move(
            S.CANCELLED, A.CANCEL, cmd.actor, now, cmd.reason, cmd.note, deadlines=(), paused=(), orders=()
        )

    def _department(self, code: str | None) -> str:
        if not code or self.directory.department(code) is None:
            raise Refused("department.unknown", f"no active department {code!r} in the registry")
        return code


def _bump(c: Counters, **by: int) -> Counters:
    return Counters(**{k: getattr(c, k) + by.get(k, 0) for k in Counters.__struct_fields__})


def actor_key(actor: Actor) -> str:
    """One actor, as compared between resolving and verifying."""
    return f"{actor.kind}:{actor.id}"
