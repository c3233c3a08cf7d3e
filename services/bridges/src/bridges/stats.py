"""What the bridges count, in memory (GET /v1/status) and as metrics (/metrics, OTLP).

Per HJ 212 station (MN): packets taken in, bad packets by reason (bad CRC first), last seen. Per
bridge: connections open and refused, records produced, produce failures, and per CAP feed its
state (ok / failing with the error, consecutive failures, next poll)."""

from __future__ import annotations

import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation

from onegrid import telemetry


@dataclass
class Station:
    packets: int = 0
    bad: Counter[str] = field(default_factory=Counter)
    last_seen: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "packets": self.packets,
            "bad_crc": self.bad.get("hj212.crc_mismatch", 0),
            "bad": dict(self.bad),
            "last_seen": self.last_seen,
        }


@dataclass
class FeedState:
    url: str
    state: str = "starting"
    error: str | None = None
    failures: int = 0
    polls: int = 0
    not_modified: int = 0
    alerts: int = 0
    next_poll_in_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Stats:
    def __init__(self) -> None:
        self.stations: dict[str, Station] = {}
        self.events: Counter[str] = Counter()  # per bridge: connections, refusals, produce failures
        self.feeds: dict[str, FeedState] = {}
        m = telemetry.meter("bridges")
        self._records = m.create_counter("bridges_records", description="records produced, by bridge")
        self._events = m.create_counter(
            "bridges_events", description="connections, refusals, failures, by bridge"
        )
        self._packets = m.create_counter("bridges_hj212_packets", description="HJ 212 packets per station")
        self._bad = m.create_counter(
            "bridges_hj212_bad_packets", description="bad HJ 212 packets per station and reason"
        )
        _observe(self)

    def event(self, bridge: str, what: str, n: int = 1) -> None:
        self.events[f"{bridge}.{what}"] += n
        self._events.add(n, {"bridge": bridge, "event": what})

    def produced(self, bridge: str) -> None:
        self.event(bridge, "produced")
        self._records.add(1, {"bridge": bridge})

    def packet(self, mn: str) -> None:
        s = self.stations.setdefault(mn, Station())
        s.packets += 1
        s.last_seen = time.time()
        self._packets.add(1, {"mn": mn})

    def bad_packet(self, mn: str | None, reason: str) -> None:
        key = mn or "(unknown)"
        s = self.stations.setdefault(key, Station())
        s.bad[reason] += 1
        s.last_seen = time.time()
        self._bad.add(1, {"mn": key, "reason": reason})

    def to_json(self) -> dict[str, Any]:
        return {
            "events": dict(self.events),
            "stations": {mn: s.to_json() for mn, s in sorted(self.stations.items())},
            "cap_feeds": {name: f.to_json() for name, f in self.feeds.items()},
        }


# Observable gauges are registered once per process (a second registration of the same name is
# ignored by the SDK); their callbacks read every live Stats.
_LIVE: weakref.WeakSet[Stats] = weakref.WeakSet()
_registered = False


def _observe(stats: Stats) -> None:
    global _registered
    _LIVE.add(stats)
    if _registered:
        return
    _registered = True
    m = telemetry.meter("bridges")

    def last_seen(_: CallbackOptions) -> list[Observation]:
        return [
            Observation(s.last_seen, {"mn": mn})
            for st in list(_LIVE)
            for mn, s in st.stations.items()
            if s.last_seen
        ]

    def failing(_: CallbackOptions) -> list[Observation]:
        return [
            Observation(1 if f.state == "failing" else 0, {"feed": name})
            for st in list(_LIVE)
            for name, f in st.feeds.items()
        ]

    m.create_observable_gauge(
        "bridges_hj212_last_seen_seconds",
        callbacks=[last_seen],
        description="Unix time of each station's last packet",
    )
    m.create_observable_gauge(
        "bridges_cap_feed_failing", callbacks=[failing], description="1 while a CAP feed errors"
    )
