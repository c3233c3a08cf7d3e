"""The correlation stage: which case each report joins, decided in ONE place per region and in ONE
order, whatever the number of intake instances. No I/O.

Intake reads the legacy feeds partition by partition (each source partition on one instance). The
reports that may join another network's case are not decided there: they are forwarded, with their
drafts, to the correlation topic keyed by region, and decided by the owner of the region's
partition, against the region's case book. Two things make that independent of the instance count:

- **Where**: every candidate of a decision is in the same region. The region is the city. A CAP
  alert's area may cover the whole city (a national warning is cut to the city outline), so it is a
  candidate for every report of its family anywhere in the city: no split of the city into cells
  keeps every candidate of a correlation window on one side, the city is the smallest region that
  does. Reports outside the city are refused before correlation, so nothing correlates across
  regions. (A province runs one region per city.)
- **When**: forwarded records reach a region's partition in whatever interleaving the instances
  produce them. They are decided in the *order key* of their legacy record instead: (stream time of
  its source partition, feed, partition, offset), where the stream time is the latest broker
  timestamp read from that partition up to the record (a running maximum, so keys rise with the
  offset). Each source partition also sends a *watermark*: every later record from it has a key
  at or above it. A forwarded record is decided once its key is below every source's watermark,
  so the decisions come in key order, which is a function of the input alone.

A record held back for its turn is state of the region's partition: it is written to the stage's
changelog (`intake.correlate.state.v1`) with the watermarks and the *horizon* (the key up to which
all is decided), in the same transaction, so a new owner of the partition continues exactly where
the last one committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from shapely.geometry import Point, mapping
from shapely.geometry import shape as shapely_shape
from shapely.geometry.base import BaseGeometry

from intake.domain.correlation import BookTxn, Decision
from intake.domain.errors import Quarantined
from intake.domain.identity import event_id_for
from intake.domain.nearby import Bounds, RecentCase
from intake.domain.report import Intent
from onegrid_contracts import case_event as ce

# The one correlation region of a city (the key of every record on the correlation topic).
CITY_REGION = "city"
# Feeds decided where they are read: HJ 212's network is never merged across networks
# (correlation.NEVER_MERGED) and its episodes are per station, on the station's own partition.
IN_PLACE_FEEDS = frozenset({"hj212"})

OrderKey = tuple[int, str, int, int]  # (stream time ms, feed, partition, offset)
Source = tuple[str, int]  # (feed, partition)


class Pending(msgspec.Struct, frozen=True):
    """One report waiting for its correlation decision: its event drafted as if it opened its own
    case, and what the decision needs besides."""

    draft: ce.CaseEvent
    intent: str
    refers_to: tuple[str, ...]
    shape: dict[str, Any] | None  # GeoJSON, WGS-84

    @property
    def at(self) -> datetime:
        return self.draft.times.occurred_at or self.draft.times.reported_at

    def geometry(self) -> BaseGeometry | None:
        return self.located()[0]

    def located(self) -> tuple[BaseGeometry | None, Bounds | None]:
        """The shape, and its box when it is a point (read from the GeoJSON, not asked of shapely)."""
        s = self.shape
        if s is None:
            return None, None
        if s.get("type") == "Point" and len(xy := s["coordinates"]) == 2:
            x, y = float(xy[0]), float(xy[1])
            return Point(x, y), (x, y, x, y)
        return shapely_shape(s), None


def pending(
    draft: ce.CaseEvent,
    intent: Intent,
    refers_to: tuple[str, ...],
    shape: BaseGeometry | None,
    point: tuple[float, float] | None = None,
) -> Pending:
    """`point` (lat, lon): the report's position, written as GeoJSON without a shapely Point (making
    one and mapping it cost ~7 µs a report); else `shape`'s GeoJSON."""
    if point is not None:
        geo: dict[str, Any] | None = {"type": "Point", "coordinates": (point[1], point[0])}
    else:
        geo = None if shape is None else dict(mapping(shape))
    return Pending(draft, str(intent), refers_to, geo)


class Forwarded(msgspec.Struct, frozen=True):
    """A legacy record whose reports the correlation stage decides (its value on the topic)."""

    topic: str
    partition: int
    offset: int
    feed: str
    order: OrderKey
    reports: tuple[Pending, ...]
    # Headers to carry on (trace context) and, when it can be quarantined here (an amendment or
    # cancel that names nothing known), the original record, so its quarantine copy holds it.
    headers: tuple[tuple[str, bytes], ...] = ()
    original: bytes | None = None


class Watermark(msgspec.Struct, frozen=True):
    """Every later record forwarded from `source` has an order key at or above `upto`."""

    source: Source
    upto: OrderKey


_forwarded = msgspec.json.Decoder(Forwarded)
_watermark = msgspec.json.Decoder(Watermark)
_encoder = msgspec.json.Encoder()


def encode(value: Forwarded | Watermark) -> bytes:
    return _encoder.encode(value)


def decode_forwarded(data: bytes) -> Forwarded:
    return _forwarded.decode(data)


def decode_watermark(data: bytes) -> Watermark:
    return _watermark.decode(data)


def order_keys(
    feed: str, partition: int, stream_ms: int, records: list[tuple[int, int]]
) -> tuple[list[OrderKey], int]:
    """The order keys of a source partition's records [(offset, timestamp ms)], in offset order, given
    the partition's stream time before them; returns the keys and the stream time after them."""
    keys = []
    for offset, timestamp in records:
        stream_ms = max(stream_ms, timestamp)
        keys.append((stream_ms, feed, partition, offset))
    return keys, stream_ms


@dataclass(frozen=True)
class Release:
    """What one batch of the correlation topic changes: the records decided now (in order), the
    records held back, and the new watermarks and horizon."""

    decide: list[Forwarded]
    hold: list[Forwarded]
    released: list[OrderKey]  # held before, decided now
    marks: dict[Source, OrderKey]
    horizon: OrderKey | None


@dataclass
class CorrelationQueue:
    """One region partition's records waiting for their turn, the sources' watermarks, the horizon."""

    marks: dict[Source, OrderKey] = field(default_factory=dict)
    held: dict[OrderKey, Forwarded] = field(default_factory=dict)
    horizon: OrderKey | None = None
    # The highest key held, computed again only after `held` changed (idle sources ask it on every tick).
    _newest: tuple[OrderKey | None] | None = field(default=None, repr=False, compare=False)

    def copy(self) -> CorrelationQueue:
        return CorrelationQueue(dict(self.marks), dict(self.held), self.horizon)

    def newest_held(self) -> OrderKey | None:
        """The highest order key of the records held (None when none is)."""
        if self._newest is None:
            self._newest = (max(self.held) if self.held else None,)
        return self._newest[0]

    def floor(self, marks: dict[Source, OrderKey], sources: frozenset[Source]) -> OrderKey | None:
        """The lowest watermark of all sources (None while a source has sent none)."""
        if not sources or any(s not in marks for s in sources):
            return None
        return min(marks[s] for s in sources)

    def plan(self, items: list[Forwarded], marks: list[Watermark], sources: frozenset[Source]) -> Release:
        new_marks = dict(self.marks)
        for m in marks:
            if m.source not in new_marks or m.upto > new_marks[m.source]:
                new_marks[m.source] = m.upto
        decide: list[Forwarded] = []
        waiting: dict[OrderKey, Forwarded] = dict(self.held)
        for it in items:
            if self.horizon is not None and it.order <= self.horizon:
                decide.append(it)  # late (its source's stream time went back): decided as it comes
            elif it.order not in waiting:
                waiting[it.order] = it
        floor = self.floor(new_marks, sources)
        ready = sorted(k for k in waiting if floor is not None and k < floor)
        decide += [waiting[k] for k in ready]
        horizon = self.horizon
        if ready and (horizon is None or ready[-1] > horizon):
            horizon = ready[-1]
        ready_set = set(ready)
        return Release(
            decide=decide,
            hold=[it for k, it in waiting.items() if k not in ready_set and k not in self.held],
            released=[k for k in ready if k in self.held],
            marks=new_marks,
            horizon=horizon,
        )

    def apply(self, release: Release) -> None:
        self.marks = dict(release.marks)
        for k in release.released:
            self.held.pop(k, None)
        for it in release.hold:
            self.held[it.order] = it
        self.horizon = release.horizon
        self._newest = None

    # -- the changelog (intake.correlate.state.v1) -----------------------------------------------------

    def observe_marks(self, value: dict[str, Any]) -> None:
        """A committed marks record; applied only where newer (records may be read late)."""
        for src, upto in value.get("marks", []):
            s, k = (str(src[0]), int(src[1])), _key(upto)
            if s not in self.marks or k > self.marks[s]:
                self.marks[s] = k
        if value.get("horizon") is not None:
            h = _key(value["horizon"])
            if self.horizon is None or h > self.horizon:
                self.horizon = h
                self.held = {k: v for k, v in self.held.items() if k > h}
                self._newest = None

    def observe_held(self, order: OrderKey, item: Forwarded | None) -> None:
        self._newest = None
        if item is None:
            self.held.pop(order, None)
        elif self.horizon is None or order > self.horizon:
            self.held[order] = item


def marks_value(release: Release) -> dict[str, Any]:
    return {
        "marks": [[list(s), list(k)] for s, k in sorted(release.marks.items())],
        "horizon": None if release.horizon is None else list(release.horizon),
    }


def _key(value: Any) -> OrderKey:
    return (int(value[0]), str(value[1]), int(value[2]), int(value[3]))


def order_of(value: Any) -> OrderKey:
    return _key(value)


@dataclass
class Settled:
    """A forwarded record decided: its case events, or why it is set aside."""

    events: list[ce.CaseEvent]
    error: Quarantined | None = None


def with_decision(draft: ce.CaseEvent, decision: Decision) -> ce.CaseEvent:
    """The draft as the decision has it: the case it opens or joins, the event's type and id."""
    assert decision.event_type is not None and decision.case_id is not None
    merge = None
    if decision.merged_into is not None:
        merge = ce.Merge(
            reason=decision.reason or "correlation.nearby_same_family",
            matched_case_id=decision.merged_into,
            distance_m=decision.distance_m,
            time_delta_s=decision.time_delta_s,
        )
    return msgspec.structs.replace(
        draft,
        event_id=event_id_for(draft.source.network, draft.source.source_id, decision.event_type),
        event_type=decision.event_type,
        case_id=decision.case_id,
        merge=merge,
    )


def settle(book: BookTxn, item: Forwarded) -> Settled:
    """Decide every report of `item` against the book (in the batch's transaction), in order."""
    events = []
    for p in item.reports:
        d = p.draft
        shape, bounds = p.located()
        try:
            decision = book.decide(
                source_key=f"{d.source.network}:{d.source.source_id}",
                intent=Intent(p.intent),
                refers_to=p.refers_to,
                family=d.category.family,
                shape=shape,
                at=p.at,
                network=d.source.network,
                source_id=d.source.source_id,
                bounds=bounds,
            )
        except LookupError as e:
            return Settled([], Quarantined("correlation.unknown_reference", str(e)))
        if decision.event_type is None:
            continue  # the same source record again: already taken in
        assert decision.case_id is not None
        recent = None
        if shape is not None:
            box = bounds or tuple(shape.bounds)
            recent = RecentCase(decision.case_id, d.category.family, shape, p.at, d.source.network, box)
        book.record(f"{d.source.network}:{d.source.source_id}", decision, recent, d.times.received_at)
        events.append(with_decision(d, decision))
    return Settled(events)
