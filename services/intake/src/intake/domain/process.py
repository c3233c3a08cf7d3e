"""The intake core: a batch of legacy records in, case events and refusals out. No I/O.

Three passes, so that the expensive parts run once per batch rather than once per record:
1. parse every record into Reports (feeds; the HJ 212 feed advances its episode state);
2. convert every position to WGS-84 and place every report in one batched spatial lookup;
3. in order: classify (crosswalk), correlate (case book) and build the CaseEvent.
A record either yields all its events or none: any refusal sets the whole record aside.
The service (Kafka) and the feed checker (files) both run exactly this code.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import numpy as np
import shapely
from shapely.geometry import Point
from shapely.geometry import shape as shapely_shape
from shapely.geometry.base import BaseGeometry

from intake.domain.coords import CoordSystem, to_wgs84_many, valid_mask
from intake.domain.correlate import Pending, pending
from intake.domain.correlation import NEVER_MERGED, BookTxn, CaseBook, Decision
from intake.domain.crosswalk import Crosswalk
from intake.domain.errors import IntakeError, Quarantined, Rejected
from intake.domain.feeds.cap.reports import PreparedArea, reports_from_cap
from intake.domain.feeds.hj212.feed import EnvState, EnvTxn, reports_from_packet
from intake.domain.feeds.party.reports import reports_from_party
from intake.domain.feeds.patrol.reports import reports_from_patrol
from intake.domain.feeds.safety.reports import reports_from_safety
from intake.domain.identity import case_id_for
from intake.domain.nearby import Bounds, RecentCase
from intake.domain.normalize import Provenance, to_case_event
from intake.domain.placement import UNLOCATED, Geography, Placement, from_chain, from_owner
from intake.domain.report import Report
from onegrid.topics import legacy_feeds
from onegrid_contracts import case_event as ce

# Legacy topic -> the feed it carries, as the topic catalogue declares them.
LEGACY_FEEDS = legacy_feeds()


class Inbound(msgspec.Struct, frozen=True):
    feed: str  # hj212 | cap | safety | party | open311 | patrol
    value: bytes
    provenance: Provenance
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    area: PreparedArea | None = None  # a CAP alert's geometry, computed ahead by the service


NO_FINDING = "no finding"  # a record that reports nothing: a measurement within limits, a command
DUPLICATE = "duplicate"  # the same source record again: already taken in
CITY_OUTLINE_TOLERANCE = 0.001  # degrees


@dataclass
class Outcome:
    """Per inbound record: its events, or the refusal that set it aside.

    ``no_case`` says why an accepted record gave no event (``status Test``, ``duplicate``...);
    ``placement`` is where its first report was placed, None when nothing was placed (a record that
    could not be read, or that names no place)."""

    events: list[ce.CaseEvent] = field(default_factory=list)
    error: IntakeError | None = None
    no_case: str | None = None
    placement: Placement | None = None
    # Reports whose case the correlation stage decides (drafted here; `deferred` intake only).
    deferred: list[Pending] = field(default_factory=list)


@dataclass
class BatchOutcome:
    outcomes: list[Outcome]
    book: BookTxn
    env: EnvTxn

    def apply(self) -> None:
        """Make the batch's state changes permanent (call once the batch is committed)."""
        self.book.apply()
        self.env.apply()


OpenFeed = Callable[[Inbound], list[Report]]


@dataclass
class Intake:
    crosswalk: Crosswalk
    geography: Geography
    book: CaseBook = field(default_factory=CaseBook)
    env: EnvState = field(default_factory=EnvState)
    open311: OpenFeed | None = None
    # True: reports that may join another network's case are drafted, not decided (the service's
    # correlation stage decides them: intake.domain.correlate); False: decided here (feed checker).
    deferred: bool = False

    def process(self, batch: Sequence[Inbound]) -> BatchOutcome:
        book, env = self.book.begin(), self.env.begin()
        outcomes = [Outcome() for _ in batch]
        reports: list[tuple[int, Report]] = []
        for i, inbound in enumerate(batch):
            try:
                parsed = self._parse(inbound, env)
            except IntakeError as e:
                outcomes[i].error = e
                continue
            reports += [(i, r) for r in parsed]
            if not parsed:
                outcomes[i].no_case = NO_FINDING
        points = self._convert(reports, outcomes)
        places = self._place(reports, points, outcomes)
        shapes = point_shapes(points)
        for (i, report), point, place, shape in zip(reports, points, places, shapes, strict=True):
            if outcomes[i].error is not None:
                continue
            if report.no_case is not None:
                outcomes[i].no_case = report.no_case
                continue
            try:
                if self.deferred and report.network not in NEVER_MERGED:
                    outcomes[i].deferred.append(self._draft(report, point, place, batch[i]))
                    continue
                events = self._build(report, point, place, batch[i], book, shape)
            except IntakeError as e:
                outcomes[i].error = e
                outcomes[i].events.clear()
                outcomes[i].deferred.clear()
                continue
            outcomes[i].events += events
            if not outcomes[i].events and not outcomes[i].deferred:
                outcomes[i].no_case = DUPLICATE
        return BatchOutcome(outcomes, book, env)

    # -- pass 1 ---------------------------------------------------------------------------------

    def _parse(self, inbound: Inbound, env: EnvTxn) -> list[Report]:
        received = inbound.provenance.received_at
        match inbound.feed:
            case "hj212":
                return reports_from_packet(inbound.value, env, self.geography.station, received)
            case "cap":
                return reports_from_cap(inbound.value, inbound.area)
            case "safety":
                return reports_from_safety(inbound.value)
            case "party":
                return reports_from_party(inbound.value)
            case "patrol":
                return reports_from_patrol(inbound.value)
            case "open311" if self.open311 is not None:
                return self.open311(inbound)
        raise Quarantined("intake.no_adapter", f"no adapter for feed {inbound.feed}")

    # -- pass 2 ---------------------------------------------------------------------------------

    def _convert(
        self, reports: list[tuple[int, Report]], outcomes: list[Outcome]
    ) -> list[tuple[float, float] | None]:
        """Every position in WGS-84 (lat, lon), one vectorised call per coordinate system."""
        out: list[tuple[float, float] | None] = [None] * len(reports)
        by_system: dict[CoordSystem, list[int]] = {}
        for k, (_, r) in enumerate(reports):
            if r.position is not None:
                by_system.setdefault(r.position.system, []).append(k)
        for system, ks in by_system.items():
            positions = [reports[k][1].position for k in ks]
            lats = np.array([p.lat for p in positions if p is not None])
            lons = np.array([p.lon for p in positions if p is not None])
            ok = valid_mask(lats, lons)
            for k, good, la, lo in zip(ks, ok, lats, lons, strict=True):
                if not good:
                    outcomes[reports[k][0]].error = Rejected(
                        "coords.invalid", f"coordinates ({la}, {lo}) are not a place on Earth"
                    )
            good_ks = [k for k, g in zip(ks, ok, strict=True) if g]
            if good_ks:
                wl, wn = to_wgs84_many(lats[ok], lons[ok], system)
                for k, la, lo in zip(good_ks, wl, wn, strict=True):
                    out[k] = (float(la), float(lo))
        return out

    def _place(
        self,
        reports: list[tuple[int, Report]],
        points: list[tuple[float, float] | None],
        outcomes: list[Outcome],
    ) -> list[Placement]:
        places: list[Placement] = [UNLOCATED] * len(reports)
        located = [k for k, p in enumerate(points) if p is not None]
        if located:
            chains = self.geography.locate(
                np.array([points[k][1] for k in located]),  # type: ignore[index]
                np.array([points[k][0] for k in located]),  # type: ignore[index]
            )
            for k, chain in zip(located, chains, strict=True):
                places[k] = from_chain(chain, reports[k][1].severity)
        for k, (i, r) in enumerate(reports):
            if points[k] is not None:
                pass
            elif r.area is not None:
                owner = self.geography.owner(r.area)
                places[k] = from_owner(owner, self.geography, r.area, r.severity)
                city = self.geography.city_area()
                if owner is None and city is not None and r.area.covers(city):
                    # A national or provincial warning: for this city, its area is the city (to
                    # about 100 m: the case carries an outline, not the survey).
                    reports[k] = (i, msgspec.structs.replace(r, area=city.simplify(CITY_OUTLINE_TOLERANCE)))
            elif r.grid_code and (chain := self.geography.chain_of(r.grid_code)) is not None:
                places[k] = from_chain(chain, r.severity)
            elif r.division_code and (area := self.geography.division_area(r.division_code)) is not None:
                places[k] = from_owner(self.geography.owner(area), self.geography, area, r.severity)
            if places[k].located and outcomes[i].placement is None:
                outcomes[i].placement = places[k]
            if outcomes[i].error is not None or r.no_case is not None:
                continue  # a record about no real incident is placed, never refused for its place
            if not places[k].inside_city:
                outcomes[i].error = Rejected(
                    "place.outside_city", f"{r.network} record {r.source_id} lies outside the city's area"
                )
            elif not places[k].located and r.must_locate:
                outcomes[i].error = Rejected(
                    "place.outside_city",
                    f"{r.network} record {r.source_id} names no polygon, circle, geocode or grid of the city",
                )
        return places

    # -- pass 3 ---------------------------------------------------------------------------------

    def _build(
        self,
        r: Report,
        point: tuple[float, float] | None,
        place: Placement,
        inbound: Inbound,
        book: BookTxn,
        point_shape: Point | None = None,
    ) -> list[ce.CaseEvent]:
        """`point_shape`: the point's shapely Point when the caller made the batch's in one call."""
        category = self.crosswalk.map(r.network, r.source_code, hints=r.hints)
        bounds: Bounds | None = None
        if point:
            shape: BaseGeometry | None = point_shape or Point(point[1], point[0])
            bounds = (point[1], point[0], point[1], point[0])  # a point's box: no shapely read
        else:
            shape = r.area
        at = (r.occurred or r.reported).utc
        try:
            decision = book.decide(
                source_key=r.source_key,
                intent=r.intent,
                refers_to=tuple(f"{r.network}:{x}" for x in r.refers_to),
                family=category.family,
                shape=shape,
                at=at,
                network=r.network,
                source_id=r.source_id,
                bounds=bounds,
            )
        except LookupError as e:
            raise Quarantined("correlation.unknown_reference", str(e)) from e
        if decision.event_type is None:
            return []  # the same source record again: already taken in
        assert decision.case_id is not None
        recent = (
            RecentCase(decision.case_id, category.family, shape, at, r.network, bounds or tuple(shape.bounds))
            if shape is not None
            else None
        )
        book.record(r.source_key, decision, recent, inbound.provenance.received_at)
        return [
            to_case_event(
                r,
                category=category,
                taxonomy_version=self.crosswalk.taxonomy_version,
                crosswalk_version=self.crosswalk.version,
                placement=place,
                point=point,
                decision=decision,
                provenance=inbound.provenance,
                geography_version=self.geography.version,
            )
        ]

    def _draft(
        self, r: Report, point: tuple[float, float] | None, place: Placement, inbound: Inbound
    ) -> Pending:
        """The report's event as if it opened its own case, for the correlation stage to decide."""
        category = self.crosswalk.map(r.network, r.source_code, hints=r.hints)
        draft = to_case_event(
            r,
            category=category,
            taxonomy_version=self.crosswalk.taxonomy_version,
            crosswalk_version=self.crosswalk.version,
            placement=place,
            point=point,
            decision=Decision("case.reported", case_id_for(r.network, r.source_id)),
            provenance=inbound.provenance,
            geography_version=self.geography.version,
        )
        refers_to = tuple(f"{r.network}:{x}" for x in r.refers_to)
        return pending(draft, r.intent, refers_to, None if point else r.area, point)

    def silence(
        self, now: datetime, stations: set[str] | None = None
    ) -> tuple[list[ce.CaseEvent], BatchOutcome]:
        """Stations (default: all) silent too long at `now`: their findings as case events (the caller
        commits, then applies)."""
        from intake.domain.feeds.hj212.feed import finding_report

        book, env = self.book.begin(), self.env.begin()
        events: list[ce.CaseEvent] = []
        refused: list[Outcome] = []  # findings that could not become events, for the caller to count
        prov = Provenance(None, None, None, now)
        for f in env.silence(now, stations):
            station = self.geography.station(f.mn)
            if station is None:
                continue
            r = finding_report(f, station, now)
            inbound = Inbound("hj212", b"", prov)
            point = (station.lat, station.lon)
            chain = self.geography.locate(np.array([station.lon]), np.array([station.lat]))[0]
            try:
                events += self._build(r, point, from_chain(chain, r.severity), inbound, book)
            except IntakeError as e:
                refused.append(Outcome(error=e))
        return events, BatchOutcome(refused, book, env)


def point_shapes(points: Sequence[tuple[float, float] | None]) -> list[Point | None]:
    """The (lat, lon) points as shapely Points, made in one call (~0.2 µs a point; 3.7 one by one)."""
    out: list[Point | None] = [None] * len(points)
    located = [k for k, p in enumerate(points) if p is not None]
    if located:
        made = shapely.points(
            np.array([points[k][1] for k in located]),  # type: ignore[index]
            np.array([points[k][0] for k in located]),  # type: ignore[index]
        )
        for k, shape in zip(located, made, strict=True):
            out[k] = shape
    return out


class _SeenPoint(msgspec.Struct):
    lat: float
    lon: float


class _SeenLocation(msgspec.Struct):
    point: _SeenPoint | None = None
    area: dict[str, Any] | None = None  # GeoJSON, as shapely reads it


class _SeenSource(msgspec.Struct):
    network: str
    source_id: str


class _SeenCategory(msgspec.Struct):
    family: str


class _SeenTimes(msgspec.Struct):
    reported_at: datetime
    received_at: datetime
    occurred_at: datetime | None = None


class SeenCase(msgspec.Struct):
    """What the case book takes from a `cases.v1` event; the rest of it is skipped unread. Every
    instance reads the whole topic back, its own events too (a case event written by intake was
    validated against the contract when it was made): the full, validated decode costs ~13 µs an
    event."""

    event_type: str
    case_id: uuid.UUID
    source: _SeenSource
    category: _SeenCategory
    location: _SeenLocation
    times: _SeenTimes


decode_seen = msgspec.json.Decoder(SeenCase).decode


def observe_event(book: CaseBook, ev: ce.CaseEvent | SeenCase) -> None:
    """Rebuild the case book from `cases.v1`: what was taken in, and the recent cases to merge with."""
    key = f"{ev.source.network}:{ev.source.source_id}"
    recent = None
    loc = ev.location
    # An event this instance decided is in its book already (its batch's commit put it there): taken
    # in again as it is, without making its shape a second time.
    if ev.event_type == "case.reported" and not book.holds_recent(ev.category.family, ev.case_id):
        at = ev.times.occurred_at or ev.times.reported_at
        family, network = ev.category.family, ev.source.network
        if loc.point is not None:
            lon, lat = loc.point.lon, loc.point.lat
            recent = RecentCase(ev.case_id, family, Point(lon, lat), at, network, (lon, lat, lon, lat))
        elif loc.area is not None:
            area = loc.area if isinstance(loc.area, dict) else msgspec.to_builtins(loc.area)
            recent = RecentCase(ev.case_id, family, shapely_shape(area), at, network)
    book.observe(key, ev.case_id, recent, ev.times.received_at)
