"""The legacy networks of the city as one stream of records: what each network sends, when, and
what intake must make of it.

`Networks.next(now)` returns the next record(s) at `now`. Most are HJ 212 minute packets (stations in
turn, see stations.py); the rest are 综治 events, 民情日记, residents' Open311 requests and CAP alerts
(暴雨/大风, each followed minutes later by an Update and sometimes a Cancel). Now and then one
incident is reported by three networks at one place within minutes (CAP Fire, safety 0302, party
MQ05): intake must make one case of it. A small fraction of records is broken the way real feeds
break (a bad CRC, truncated XML, a code the crosswalk does not know), each tagged with the reason
intake must give, so the DLQ and quarantine have something to show.

Deterministic: the same seed, start and sequence of `now` give the same records byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from simulators.domain import formats, texts
from simulators.domain.city import City, Place
from simulators.domain.stations import StationModel, StationTuning

FEEDS = ("hj212", "cap", "safety", "party", "open311")
MET_SENDER = "qxj@yangzhou.gov.cn"  # 气象台: background CAP alerts
FIRE_SENDER = formats.CAP_SENDER  # 应急管理局: alerts of planned incidents


@dataclass(frozen=True, slots=True)
class Emission:
    """One legacy record: its feed, Kafka key (HJ 212: MN; CAP: sender; safety/party: source id;
    Open311: none, it goes over HTTP), bytes, what it is, and the refusal intake must give
    (`expect`; None = accepted)."""

    feed: str
    key: str
    value: bytes
    kind: str
    expect: str | None = None
    incident: str | None = None


@dataclass(frozen=True)
class Mix:
    """Shares of new records per feed (the rest is HJ 212), and chances per record."""

    safety: float = 0.08
    party: float = 0.08
    open311: float = 0.06
    cap: float = 0.025
    incident: float = 0.004  # one cross-network incident (three records)
    bad: float = 0.02  # a broken record
    update_after_s: tuple[int, int] = (300, 900)
    cancel_after_s: tuple[int, int] = (1200, 2400)
    cancel_share: float = 0.3
    incident_spread_s: tuple[int, int] = (30, 240)  # the other networks report within minutes


BAD_KINDS = {
    "bad_crc": ("hj212", "hj212.crc_mismatch"),
    "bad_xml": ("safety", "safety.xml_malformed"),
    "unmapped_code": ("party", "crosswalk.unmapped_code"),
}

Later = Callable[[datetime], Emission]


def run_tag(seed: int, start: datetime) -> str:
    """Six hex digits naming one run, so ids differ between runs (intake remembers source ids)."""
    return hashlib.blake2s(f"{seed}:{start.isoformat()}".encode(), digest_size=3).hexdigest().upper()


@dataclass
class Networks:
    city: City
    seed: int
    start: datetime
    mix: Mix = field(default_factory=Mix)
    tuning: StationTuning = field(default_factory=StationTuning)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.tag = run_tag(self.seed, self.start)
        self.stations = [StationModel(s, self.tuning) for s in self.city.stations]
        self._turn = 0
        self._pending: list[tuple[datetime, int, Later]] = []
        self._n = 0  # counter for ids and stable ordering of pending records
        self._safety_seq = -1
        self.incidents = 0

    # -- the stream ------------------------------------------------------------------------------

    def next(self, now: datetime) -> list[Emission]:
        """The record due at `now`: a scheduled follow-up when one is due, else a new record."""
        if self._pending:
            self._pending.sort(key=lambda p: (p[0], p[1]))
            if self._pending[0][0] <= now:
                _, _, later = self._pending.pop(0)
                return [later(now)]
        m, draw = self.mix, self.rng.random()
        if draw < m.incident:
            return [self._incident(now)]
        draw -= m.incident
        if draw < m.bad:
            return [self._bad(now)]
        draw = self.rng.random()
        for feed, share in (("safety", m.safety), ("party", m.party), ("open311", m.open311), ("cap", m.cap)):
            if draw < share:
                return [getattr(self, f"_{feed}")(now)]
            draw -= share
        return self._hj212(now)

    def later(self, at: datetime, make: Later) -> None:
        self._n += 1
        self._pending.append((at, self._n, make))

    # -- one builder per network ------------------------------------------------------------------

    def _hj212(self, now: datetime) -> list[Emission]:
        for _ in range(len(self.stations)):
            model = self.stations[self._turn % len(self.stations)]
            self._turn += 1
            reading = model.reading(now, self.rng)
            if reading is None:
                continue
            s = model.station
            packet = formats.hj212_packet(s.mn, now, reading.values, st=s.st, flags=reading.flags)
            return [Emission("hj212", s.mn, packet, reading.kind)]
        return []  # every station silent at once: nothing to send this tick

    def _safety(self, now: datetime, *, code: str | None = None, place: Place | None = None) -> Emission:
        code = code or str(self.rng.choice(sorted(texts.SAFETY)))
        title, description = texts.SAFETY.get(code, texts.SAFETY_INCIDENT)
        place = place or self.city.place(self.rng)
        level = "较大" if self.rng.random() < 0.25 else "一般"
        sid = self.safety_id(now)
        doc = formats.safety_event(
            sid,
            code=code,
            level=level,
            wgs=place.wgs,
            when=now,
            title=title,
            description=description,
            address=place.address,
        )
        return Emission("safety", sid, doc, "report")

    def safety_id(self, now: datetime) -> str:
        """`PA` + reporting unit + local date + a per-day sequence taken from the clock (tenths of a
        second since midnight), so two runs on one day do not reuse a number."""
        local = now.astimezone(formats.BEIJING)
        tenths = (local.hour * 3600 + local.minute * 60 + local.second) * 10 + local.microsecond // 100_000
        self._safety_seq = max(self._safety_seq + 1, tenths) % 1_000_000
        return f"PA321003{local:%Y%m%d}{self._safety_seq:06d}"

    def _party(self, now: datetime, *, code: str | None = None, place: Place | None = None) -> Emission:
        code = code or str(self.rng.choice(sorted(texts.PARTY)))
        title, content = texts.PARTY.get(code, texts.PARTY_INCIDENT)
        place = place or self.city.place(self.rng)
        self._n += 1
        sid = f"MQRJ{now.astimezone(formats.BEIJING):%Y%m%d}{self.tag}{self._n:06d}"
        doc = formats.party_diary(
            sid, code=code, wgs=place.wgs, when=now, title=title, content=content, address=place.address
        )
        return Emission("party", sid, doc, "report")

    def _open311(self, now: datetime) -> Emission:
        code = str(self.rng.choice(sorted(texts.OPEN311)))
        place = self.city.place(self.rng)
        body = formats.open311_form(
            code, wgs=place.wgs, description=texts.OPEN311[code], address=place.address
        )
        return Emission("open311", "", body, "request")

    def _cap(self, now: datetime) -> Emission:
        event, headline = texts.CAP_MET[int(self.rng.integers(len(texts.CAP_MET)))]
        severity = "Severe" if self.rng.random() < 0.2 else "Moderate"
        place = self.city.place(self.rng)
        ident = self._cap_id()

        def alert(msg_type: str, refs: tuple[str, ...], ident: str) -> Later:
            return lambda t: Emission(
                "cap",
                MET_SENDER,
                formats.cap_alert(
                    ident,
                    msg_type=msg_type,
                    refs=refs,
                    category="Met",
                    event=event,
                    severity=severity,
                    urgency="Expected",
                    centre=place.wgs,
                    radius_km=0.8,
                    sent=_sent(t),
                    sender=MET_SENDER,
                    headline=headline,
                    area_desc=place.address,
                ),
                msg_type.lower(),
            )

        m = self.mix
        self.later(now + _seconds(self.rng, m.update_after_s), alert("Update", (ident,), self._cap_id()))
        if self.rng.random() < m.cancel_share:
            self.later(now + _seconds(self.rng, m.cancel_after_s), alert("Cancel", (ident,), self._cap_id()))
        return alert("Alert", (), ident)(now)

    def _cap_id(self) -> str:
        self._n += 1
        return f"YZ{self.tag}-{self._n:06d}"

    def _incident(self, now: datetime) -> Emission:
        """A fire seen by three networks: the CAP alert now, 综治 and 民情日记 within minutes."""
        self.incidents += 1
        name = f"{self.tag}-fire-{self.incidents}"
        place = self.city.place(self.rng)
        ident = self._cap_id()
        spread = self.mix.incident_spread_s
        safety_at = now + _seconds(self.rng, spread)
        self.later(safety_at, lambda t: _tagged(self._safety(t, code="0302", place=place), name))
        self.later(
            now + _seconds(self.rng, spread),
            lambda t: _tagged(self._party(t, code="MQ05", place=place), name),
        )
        alert = formats.cap_alert(
            ident,
            category="Fire",
            event="火灾",
            severity="Severe",
            urgency="Expected",
            centre=place.wgs,
            radius_km=0.3,
            sent=_sent(now),
            sender=FIRE_SENDER,
            headline="商铺火灾",
            area_desc=place.address,
        )
        return Emission("cap", FIRE_SENDER, alert, "incident", incident=name)

    def _bad(self, now: datetime) -> Emission:
        kind = str(self.rng.choice(sorted(BAD_KINDS)))
        feed, reason = BAD_KINDS[kind]
        if kind == "bad_crc":
            good = self._hj212(now) or [Emission("hj212", "", b"", "")]
            if not good[0].value:  # every station silent: break a packet of the first one
                s = self.city.stations[0]
                good = [
                    Emission("hj212", s.mn, formats.hj212_packet(s.mn, now, {"a34004": 30.0}, st=s.st), "")
                ]
            return Emission(feed, good[0].key, formats.with_bad_crc(good[0].value), kind, reason)
        if kind == "bad_xml":
            good_doc = self._safety(now)
            return Emission(feed, good_doc.key, formats.truncated_xml(good_doc.value), kind, reason)
        diary = self._party(now, code="MQ99")  # a kind the app added without telling anyone
        return Emission(feed, diary.key, diary.value, kind, reason)


def _tagged(e: Emission, incident: str) -> Emission:
    return Emission(e.feed, e.key, e.value, "incident", e.expect, incident)


def _sent(t: datetime) -> datetime:
    """CAP `sent`: local time with its offset, whole seconds (CAP forbids fractions and `Z`)."""
    return t.astimezone(formats.BEIJING).replace(microsecond=0)


def _seconds(rng: np.random.Generator, bounds: tuple[int, int]) -> timedelta:
    return timedelta(seconds=int(rng.integers(bounds[0], bounds[1] + 1)))
