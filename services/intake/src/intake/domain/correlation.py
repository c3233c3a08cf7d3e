"""Which case a report belongs to: a new one, an existing one (same incident, another network), or
none at all (a duplicate of what was already taken in).

`CaseBook` is the state: every source key taken in within the taken-in horizon and the case it
went to, plus the recent cases per correlation family. It is rebuilt at start from `cases.v1`
(`observe`, from the horizon on), changed only through a `BookTxn` whose changes are applied after
the batch commits, so an aborted batch leaves no trace.
"""

from __future__ import annotations

import heapq
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec
from shapely.geometry.base import BaseGeometry

from intake.domain.identity import case_id_for
from intake.domain.nearby import Bounds, RecentCase, RecentIndex, distance_to
from intake.domain.report import Intent


@dataclass(frozen=True, slots=True)
class Window:
    """How near in space and time two reports of one family must be to be one incident."""

    radius_m: float
    within: timedelta


DEFAULT_WINDOWS: dict[str, Window] = {
    "fire": Window(1000, timedelta(hours=3)),
    "flood": Window(3000, timedelta(hours=12)),
    "pollution": Window(2000, timedelta(hours=24)),
    "hazmat": Window(2000, timedelta(hours=6)),
    "*": Window(300, timedelta(hours=2)),
}


def correlation_windows(overrides: dict[str, dict[str, float]]) -> dict[str, Window]:
    """The default windows with `overrides` ({family: {"radius_m": .., "within_s": ..}}) applied."""
    windows = dict(DEFAULT_WINDOWS)
    for family, w in overrides.items():
        base = windows.get(family, windows["*"])
        windows[family] = Window(
            float(w.get("radius_m", base.radius_m)),
            timedelta(seconds=float(w.get("within_s", base.within.total_seconds()))),
        )
    return windows


# Networks whose reports are never merged by proximity, in either direction: a monitoring
# station's episode is its own case (one per station and pollutant), even when a neighbouring
# station's episode is open at the same time.
NEVER_MERGED = frozenset({"env"})


class Decision(msgspec.Struct, frozen=True):
    """`event_type` None: a duplicate, nothing to emit."""

    event_type: str | None
    case_id: uuid.UUID | None
    merged_into: uuid.UUID | None = None
    reason: str | None = None
    distance_m: float | None = None
    time_delta_s: float | None = None


@dataclass
class CaseBook:
    windows: dict[str, Window] = field(default_factory=lambda: dict(DEFAULT_WINDOWS))
    sources: dict[str, uuid.UUID] = field(default_factory=dict)
    recent: dict[str, RecentIndex] = field(default_factory=dict)
    latest: datetime | None = None  # the latest incident time seen: the clock the windows follow
    # The taken-in horizon: a source key is forgotten once it was taken in longer ago than this
    # before the latest taken-in time seen (None: never). A re-send or an amendment of a record
    # older than that is then a new case or an unknown reference (quarantined).
    keep_sources: timedelta | None = None
    # When each key was taken in (the source record's broker timestamp, `received_at`: the same
    # time in a live batch and in the replay of cases.v1), oldest first.
    taken: list[tuple[datetime, str]] = field(default_factory=list)
    taken_latest: datetime | None = None  # the clock the taken-in horizon follows

    def window(self, family: str) -> Window:
        return self.windows.get(family, self.windows["*"])

    def begin(self) -> BookTxn:
        return BookTxn(self)

    def observe(
        self, source_key: str, case_id: uuid.UUID, recent: RecentCase | None, taken_at: datetime
    ) -> None:
        """Take in one fact (from replaying cases.v1, or a committed batch); idempotent."""
        if source_key not in self.sources:
            self.sources[source_key] = case_id
            heapq.heappush(self.taken, (taken_at, source_key))
        if self.taken_latest is None or taken_at > self.taken_latest:
            self.taken_latest = taken_at
        if recent is not None:
            self.add_recent(recent)

    def holds_recent(self, family: str, case_id: uuid.UUID) -> bool:
        index = self.recent.get(family)
        return index is not None and case_id in index.ids

    def size(self) -> int:
        """Source keys known: what the taken-in horizon bounds."""
        return len(self.sources)

    def add_recent(self, recent: RecentCase) -> None:
        self.recent.setdefault(recent.family, RecentIndex()).add(recent)
        if self.latest is None or recent.at > self.latest:
            self.latest = recent.at

    def prune(self, now: datetime | None = None) -> None:
        """Forget recent cases older than their family's window before `now` (default: the latest
        incident seen), and source keys taken in before the taken-in horizon."""
        self._prune_sources()
        now = now or self.latest
        if now is None:
            return
        for family, index in self.recent.items():
            index.prune(now - self.window(family).within)

    def _prune_sources(self) -> None:
        # On stream time (the latest taken-in time), not the clock: the book of a replay is the
        # book of the run that never stopped, whatever the hour of the restart.
        if self.keep_sources is None or self.taken_latest is None:
            return
        horizon = self.taken_latest - self.keep_sources
        while self.taken and self.taken[0][0] < horizon:
            _, key = heapq.heappop(self.taken)
            del self.sources[key]


@dataclass
class BookTxn:
    """A batch's view of the book: reads see the batch's own changes; `apply` commits them."""

    book: CaseBook
    sources: dict[str, uuid.UUID] = field(default_factory=dict)
    taken_at: dict[str, datetime] = field(default_factory=dict)
    recent: dict[str, RecentIndex] = field(default_factory=dict)
    latest: datetime | None = None  # the latest incident time among this batch's own new cases

    def case_of(self, source_key: str) -> uuid.UUID | None:
        return self.sources.get(source_key) or self.book.sources.get(source_key)

    def decide(
        self,
        *,
        source_key: str,
        intent: Intent,
        refers_to: tuple[str, ...],
        family: str,
        shape: BaseGeometry | None,
        at: datetime,
        network: str,
        source_id: str,
        bounds: Bounds | None = None,
    ) -> Decision:
        """Raises LookupError when an amendment or cancel names no known record (the caller
        quarantines it: it is replayable once the original has arrived). `bounds`: the shape's box,
        when the caller has it without asking shapely (a point's is its position)."""
        if self.case_of(source_key) is not None:
            return Decision(None, self.case_of(source_key))
        if intent is not Intent.REPORT:
            for ref in refers_to:
                target = self.case_of(ref)
                if target is not None:
                    kind = "case.cancelled" if intent is Intent.CANCEL else "case.amended"
                    return Decision(kind, target)
            raise LookupError(f"{source_key} refers to {', '.join(refers_to) or 'nothing'}, none of it known")
        if shape is not None and network not in NEVER_MERGED:
            match = self._nearest_open(family, shape, at, bounds or tuple(shape.bounds))
            if match is not None:
                other, dist, dt = match
                return Decision(
                    "case.linked",
                    other.case_id,
                    other.case_id,
                    "correlation.nearby_same_family",
                    round(dist, 1),
                    round(dt, 1),
                )
        return Decision("case.reported", case_id_for(network, source_id))

    def _nearest_open(
        self, family: str, shape: BaseGeometry, at: datetime, bounds: Bounds
    ) -> tuple[RecentCase, float, float] | None:
        w = self.book.window(family)
        # A case the book forgets at the end of a batch (it prunes to its latest incident time) is no
        # candidate from the moment it is forgettable: decisions do not depend on batch boundaries.
        latest = max((t for t in (self.book.latest, self.latest) if t is not None), default=None)
        horizon = None if latest is None else latest - w.within
        best: tuple[RecentCase, float, float] | None = None
        indexes = [i for i in (self.book.recent.get(family), self.recent.get(family)) if i is not None]
        for index in indexes:
            for r in index.near(bounds, w.radius_m):
                if r.network in NEVER_MERGED or (horizon is not None and r.at < horizon):
                    continue
                dt = abs((at - r.at).total_seconds())
                if dt > w.within.total_seconds():
                    continue
                # No farther than the radius, nor than the best so far (an equal one may still win).
                d = distance_to(shape, bounds, r, w.radius_m if best is None else best[1])
                # Equally near: the smaller case id, not whichever the index happens to hold first.
                if d <= w.radius_m and (
                    best is None or d < best[1] or (d == best[1] and str(r.case_id) < str(best[0].case_id))
                ):
                    best = (r, d, dt)
        return best

    def record(
        self, source_key: str, decision: Decision, recent: RecentCase | None, taken_at: datetime
    ) -> None:
        """`taken_at`: when the source record was taken in (the event's `received_at`)."""
        if decision.case_id is None:
            return
        self.sources[source_key] = decision.case_id
        self.taken_at[source_key] = taken_at
        if recent is not None and decision.event_type == "case.reported":
            self.recent.setdefault(recent.family, RecentIndex()).add(recent)
            if self.latest is None or recent.at > self.latest:
                self.latest = recent.at

    def apply(self) -> None:
        for key, case in self.sources.items():
            self.book.observe(key, case, None, self.taken_at[key])
        for index in self.recent.values():
            for r in index.by_time:
                self.book.add_recent(r)
        self.book.prune()
