"""One case's lifecycle folded into the facts every metric is computed from (考核 per case).

Contract: `fold(events, policy)` is pure and deterministic. It takes every stored event of one case
in any order and with repeats (dispatch publishes at least once): events are ordered by `seq` and
the first of each `seq` is kept, so folding the same set of events always gives the same facts,
whatever order or how many times they arrived. A gap in `seq` (an event not yet received) is
folded over and flagged `complete=False`.

The rules (contracts/bi/README.md states them for BI teams):
- registered_at: the `registered` transition (else the first event). It places the case in its
  reporting periods; everything else about the case counts in those periods (cohort by 立案).
- The SLA clock stops while the case is suspended or merged (dispatch pauses its deadlines then):
  `paused_s` sums those intervals, and the resolve due time is the FIRST resolve deadline the case
  had, moved later by the time paused before the first closure.
- on_time (按期结案): the case is closed now, its first closure came by that due time, and it was
  never reopened within `reopen_window_s` of a closure (a fake closure found out soon after counts
  against the department). A case that never had a resolve deadline is not on time.
- acknowledge_s (签收时长): first dispatch to the department's first answer (acknowledge or progress).
- resolve_s (处置时长): registration to the latest entry into `resolved`, net of paused time before it.
- verification: each verify or rework decision on a resolved case is one check; it is in time when
  made within `verification_limit_s` of the case entering `resolved`.
- hops count dispatch, reassign and arbitrate transitions (the ping-pong count); whistles count
  escalate and whistle transitions; returns, reworks, reopens count their transitions.
- Dimensions and versions are those of the latest event; `department` is the latest department that
  held the case (the one answerable for it), `departments` all that ever did.

Acts are charged to whoever acted (eval.v2): every order (dispatch, reassign, arbitrate) opens a
department's **stint**, which lasts until the next order. A return is charged to the stint that
returned; a whistle (escalate, whistle) to the stint holding the case when it was whistled at; a
rework to the stint whose resolution failed verification. A stint's acknowledge time is its order to
the department's first answer (acknowledge, progress, resolve or return), its resolve time its
order to its latest resolution, net of paused time. Acts while no department holds the case (the
grid worker's self-handling, a whistle before any order) go to a stint without department.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from onegrid_contracts.lifecycle import LifecycleEvent

HOP_ACTIONS = frozenset({"dispatch", "reassign", "arbitrate"})
WHISTLE_ACTIONS = frozenset({"escalate", "whistle"})
ANSWER_ACTIONS = frozenset({"acknowledge", "progress"})
# What answers a department's order, for the acknowledge time of its stint.
STINT_ANSWERS = frozenset({"acknowledge", "progress", "resolve", "return"})
# The definition's name; bump it whenever a rule changes meaning (rows say which one they follow).
DEFINITION_VERSION = "eval.v2"
PAUSED_STATES = frozenset({"suspended", "merged"})


@dataclass(frozen=True)
class Policy:
    """The evaluation rules' parameters; part of every figure's recorded definition."""

    reopen_window_s: float = 7 * 86400
    verification_limit_s: float = 86400

    def definition(self) -> str:
        return f"{DEFINITION_VERSION};reopen_window_s={self.reopen_window_s:g};verification_limit_s={self.verification_limit_s:g}"


class Stint(msgspec.Struct, frozen=True, kw_only=True):
    """One department's hold of a case, from its order to the next order, and what it did."""

    index: int  # 0: acts while no department held the case; 1, 2, ...: orders in seq order
    department: str | None
    order_action: str | None  # dispatch | reassign | arbitrate (None for index 0)
    ordered_at: datetime | None
    answered_at: datetime | None
    acknowledge_s: float | None
    resolved_at: datetime | None  # its latest resolution
    resolve_s: float | None
    returns: int
    whistles: int
    resolutions: int
    reworks: int  # its resolutions that failed verification

    @property
    def acted(self) -> bool:
        return bool(self.index or self.returns or self.whistles or self.resolutions or self.reworks)


class CaseFacts(msgspec.Struct, frozen=True, kw_only=True):
    case_id: str
    last_seq: int
    complete: bool
    state: str
    registered_at: datetime
    first_dispatched_at: datetime | None
    first_answered_at: datetime | None
    resolved_at: datetime | None
    first_closed_at: datetime | None
    resolve_due_at: datetime | None
    paused_s: float
    acknowledge_s: float | None
    resolve_s: float | None
    on_time: bool
    hops: int
    returns: int
    reworks: int
    reopens: int
    reopens_in_window: int
    whistles: int
    self_handled: bool
    verifications: int
    verifications_in_time: int
    department: str | None
    departments: tuple[str, ...]
    grid: str | None
    street: str | None
    district: str | None
    network: str
    category: str
    rule_version: str | None
    taxonomy_version: str | None
    grid_version: str | None = None  # the registry version the latest event was decided with
    last_event_at: datetime | None = None  # the latest transition folded (None only in old rows)
    stints: tuple[Stint, ...] = ()

    @property
    def closed(self) -> bool:
        return self.state == "closed"


class _Clock:
    """The SLA clock's pauses: suspended and merged intervals, in order."""

    def __init__(self) -> None:
        self.intervals: list[tuple[datetime, datetime]] = []
        self._since: datetime | None = None

    def observe(self, e: LifecycleEvent) -> None:
        if e.to_state in PAUSED_STATES and self._since is None:
            self._since = e.at
        elif e.to_state not in PAUSED_STATES and self._since is not None:
            self.intervals.append((self._since, e.at))
            self._since = None

    def paused_before(self, t: datetime) -> float:
        return sum((min(end, t) - start).total_seconds() for start, end in self.intervals if start < t)


class _StintDraft:
    def __init__(self, index: int, department: str | None, e: LifecycleEvent | None) -> None:
        self.index, self.department = index, department
        self.order_action = e.action if e is not None else None
        self.ordered_at = e.at if e is not None else None
        self.answered_at: datetime | None = None
        self.resolved_at: datetime | None = None
        self.returns = self.whistles = self.resolutions = self.reworks = 0

    def done(self, clock: _Clock) -> Stint:
        start, resolved = self.ordered_at, self.resolved_at
        resolve_s = None
        if start is not None and resolved is not None:
            paused = clock.paused_before(resolved) - clock.paused_before(start)
            resolve_s = (resolved - start).total_seconds() - paused
        return Stint(
            index=self.index,
            department=self.department,
            order_action=self.order_action,
            ordered_at=start,
            answered_at=self.answered_at,
            acknowledge_s=_seconds(start, self.answered_at),
            resolved_at=resolved,
            resolve_s=resolve_s,
            returns=self.returns,
            whistles=self.whistles,
            resolutions=self.resolutions,
            reworks=self.reworks,
        )


class _Stints:
    """Charges each act to the stint of the department that did it (or was whistled at)."""

    def __init__(self) -> None:
        self.all = [_StintDraft(0, None, None)]
        self.resolver: _StintDraft | None = None  # whose resolution the next check judges

    def observe(self, e: LifecycleEvent) -> None:
        if e.action in HOP_ACTIONS:
            self.all.append(_StintDraft(len(self.all), e.dimensions.department, e))
            return
        now = self.all[-1]
        if e.action in STINT_ANSWERS and now.index and now.answered_at is None:
            now.answered_at = e.at
        if e.action in WHISTLE_ACTIONS:
            now.whistles += 1
        elif e.action == "return":
            now.returns += 1
        elif e.action == "rework" and self.resolver is not None:
            self.resolver.reworks += 1
        if e.to_state == "resolved" and e.from_state != "resolved":  # not a check handed up
            now.resolutions += 1
            now.resolved_at = e.at
            self.resolver = now

    def done(self, clock: _Clock) -> tuple[Stint, ...]:
        return tuple(s for s in (d.done(clock) for d in self.all) if s.acted)


def ordered(events: Iterable[LifecycleEvent]) -> list[LifecycleEvent]:
    """By seq, the first of each seq kept (a repeat of an event changes nothing)."""
    by_seq: dict[int, LifecycleEvent] = {}
    for e in events:
        by_seq.setdefault(e.seq, e)
    return [by_seq[s] for s in sorted(by_seq)]


def fold(events: Iterable[LifecycleEvent], policy: Policy) -> CaseFacts:
    """The facts of one case from its events (all of the same case_id; at least one)."""
    evs = ordered(events)
    if not evs:
        raise ValueError("fold needs at least one event")
    clock = _Clock()
    stints = _Stints()
    registered_at = next((e.at for e in evs if e.to_state == "registered"), evs[0].at)
    first_dispatch = first_answer = resolved_at = first_closed = last_closed = first_due = None
    hops = returns = reworks = reopens = reopens_in_window = whistles = checks = checks_in_time = 0
    self_handled = False
    departments: dict[str, None] = {}
    department: str | None = None
    for e in evs:
        clock.observe(e)
        stints.observe(e)
        if first_due is None:
            first_due = e.deadlines.resolve_by
        if e.dimensions.department:
            department = e.dimensions.department
            departments.setdefault(department, None)
        if e.action in HOP_ACTIONS:
            hops += 1
            first_dispatch = first_dispatch or e.at
        elif e.action in ANSWER_ACTIONS and first_dispatch is not None:
            first_answer = first_answer or e.at
        elif e.action in WHISTLE_ACTIONS:
            whistles += 1
        elif e.action == "return":
            returns += 1
        elif e.action == "self_handle":
            self_handled = True
        elif e.action == "reopen":
            reopens += 1
            if last_closed is not None and (e.at - last_closed).total_seconds() <= policy.reopen_window_s:
                reopens_in_window += 1
        if e.from_state == "resolved" and e.action in ("verify", "rework") and resolved_at is not None:
            checks += 1
            checks_in_time += (e.at - resolved_at).total_seconds() <= policy.verification_limit_s
        if e.action == "rework":
            reworks += 1
        if e.to_state == "resolved" and e.from_state != "resolved":
            # an overdue verification handed up (escalate_verification) stays resolved: the check
            # is still timed from the resolve
            resolved_at = e.at
        if e.to_state == "closed":
            first_closed = first_closed or e.at
            last_closed = e.at
    last = evs[-1]
    due = (
        first_due + timedelta(seconds=clock.paused_before(first_closed or last.at))
        if first_due is not None
        else None
    )
    on_time = (
        last.to_state == "closed"
        and first_closed is not None
        and due is not None
        and first_closed <= due
        and reopens_in_window == 0
    )
    d = last.dimensions
    return CaseFacts(
        case_id=str(last.case_id),
        last_seq=last.seq,
        complete=[e.seq for e in evs] == list(range(1, last.seq + 1)),
        state=last.to_state,
        registered_at=registered_at,
        first_dispatched_at=first_dispatch,
        first_answered_at=first_answer,
        resolved_at=resolved_at,
        first_closed_at=first_closed,
        resolve_due_at=due,
        paused_s=clock.paused_before(last.at),
        acknowledge_s=_seconds(first_dispatch, first_answer),
        resolve_s=(
            (resolved_at - registered_at).total_seconds() - clock.paused_before(resolved_at)
            if resolved_at is not None
            else None
        ),
        on_time=on_time,
        hops=hops,
        returns=returns,
        reworks=reworks,
        reopens=reopens,
        reopens_in_window=reopens_in_window,
        whistles=whistles,
        self_handled=self_handled,
        verifications=checks,
        verifications_in_time=checks_in_time,
        department=department,
        departments=tuple(departments),
        grid=d.grid,
        street=d.street,
        district=d.district,
        network=d.network,
        category=d.category_code,
        rule_version=last.versions.rule_version,
        taxonomy_version=last.versions.taxonomy_version,
        grid_version=last.versions.grid_version,
        last_event_at=max(e.at for e in evs),
        stints=stints.done(clock),
    )


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(CaseFacts)


def encode_facts(f: CaseFacts) -> bytes:
    return _encoder.encode(f)


def decode_facts(data: bytes | str) -> CaseFacts:
    return _decoder.decode(data)
