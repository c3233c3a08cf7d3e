"""Monitoring stations as data loggers see them: readings with a daily cycle, occasional exceedance
bursts, analyser faults (data flag D) and communication faults (B), and spells of silence.

Air stations (ST=22) report PM2.5, PM10, SO2 and NO2 in µg/m³; PM2.5 and NO2 follow the traffic
cycle of a Chinese city: a morning peak near 08:00, an afternoon dip while the boundary layer mixes,
and a longer evening peak near 19:30. Water pollution sources (ST=32) report COD, ammonia nitrogen
and pH. Outside bursts every reading stays below its limit (GB 3095-2012 grade II, GB 18918-2002
1A), so each exceedance case intake opens corresponds to one burst here; a burst is followed by
normal readings, which is what closes the episode (3 normal readings, contracts/legacy/hj212.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from simulators.domain.city import Station
from simulators.domain.formats import BEIJING

# (pollutant, typical value, limit) per station type; the first pollutant is the one bursts raise.
AIR = (("a34004", 32.0, 75.0), ("a34002", 55.0, 150.0), ("a21026", 12.0, 150.0), ("a21004", 28.0, 80.0))
WATER = (("w01018", 24.0, 50.0), ("w21003", 1.6, 5.0), ("w01001", 7.2, 9.0))
# Intake closes an episode after 3 normal readings; a little more keeps one burst one case.
CALM_PACKETS = 5
CYCLED = frozenset({"a34004", "a34002", "a21004"})


def daily_cycle(local: datetime) -> float:
    """The traffic-and-mixing factor of urban PM2.5/NO2 at a local time (1.0 = the daily mean level)."""
    h = local.hour + local.minute / 60

    def bump(centre: float, width: float) -> float:
        return math.exp(-((h - centre) ** 2) / (2 * width**2))

    return 0.85 + 0.5 * bump(8.0, 1.5) + 0.6 * bump(19.5, 2.0) - 0.25 * bump(14.0, 2.5)


@dataclass(frozen=True)
class StationTuning:
    """Chances are per packet; durations in packets, silences in wall time."""

    burst_chance: float = 0.004
    burst_packets: tuple[int, int] = (4, 10)
    burst_ratio: tuple[float, float] = (1.3, 3.4)  # x limit; >= 2 is severity III (dispatched)
    fault_chance: float = 0.002
    fault_packets: tuple[int, int] = (2, 6)
    silence_chance: float = 0.0005
    # Intake calls a station silent after 2 h without data (minute data implies no interval).
    silence: timedelta = timedelta(minutes=150)


@dataclass(frozen=True, slots=True)
class Reading:
    values: dict[str, float]
    flags: dict[str, str]  # pollutant -> data flag other than N
    kind: str  # normal | exceedance | fault


@dataclass
class StationModel:
    station: Station
    tuning: StationTuning = field(default_factory=StationTuning)
    burst_left: int = 0
    burst_ratio: float = 0.0
    fault_left: int = 0
    fault_flag: str = "D"
    silent_until: datetime | None = None
    calm_left: int = 0  # normal packets still due before another event: episodes close in between
    episodes: int = 0  # bursts, faults and silences begun (what intake should open cases for)

    @property
    def pollutants(self) -> tuple[tuple[str, float, float], ...]:
        return AIR if self.station.air else WATER

    def silent(self, now: datetime) -> bool:
        return self.silent_until is not None and now < self.silent_until

    def reading(self, now: datetime, rng: np.random.Generator) -> Reading | None:
        """The next packet's reading at `now`, or None while the station is silent."""
        if self.silent(now):
            return None
        self.silent_until = None
        t = self.tuning
        if self.burst_left == 0 and self.fault_left == 0 and self.calm_left == 0:
            draw = rng.random()
            if draw < t.silence_chance:
                self.silent_until, self.episodes = now + t.silence, self.episodes + 1
                return None
            if draw < t.silence_chance + t.fault_chance:
                self.fault_left = int(rng.integers(t.fault_packets[0], t.fault_packets[1] + 1))
                self.fault_flag = "D" if rng.random() < 0.6 else "B"
                self.episodes += 1
            elif draw < t.silence_chance + t.fault_chance + t.burst_chance:
                self.burst_left = int(rng.integers(t.burst_packets[0], t.burst_packets[1] + 1))
                self.burst_ratio = float(rng.uniform(*t.burst_ratio))
                self.episodes += 1
        values = self._normal(now, rng)
        lead, _, limit = self.pollutants[0]
        if self.burst_left:
            self.burst_left -= 1
            self.calm_left = CALM_PACKETS
            values[lead] = round(limit * self.burst_ratio * float(rng.uniform(0.97, 1.03)), 1)
            return Reading(values, {}, "exceedance")
        if self.fault_left:
            self.fault_left -= 1
            self.calm_left = CALM_PACKETS
            return Reading(values, {lead: self.fault_flag}, "fault")
        self.calm_left = max(0, self.calm_left - 1)
        return Reading(values, {}, "normal")

    def _normal(self, now: datetime, rng: np.random.Generator) -> dict[str, float]:
        cycle = daily_cycle(now.astimezone(BEIJING))
        out: dict[str, float] = {}
        for code, typical, limit in self.pollutants:
            if code == "w01001":  # pH: around neutral, never near 6 or 9
                out[code] = round(float(np.clip(rng.normal(typical, 0.15), 6.6, 7.9)), 2)
                continue
            level = typical * (cycle if code in CYCLED else 1.0) * float(rng.lognormal(0.0, 0.1))
            out[code] = round(min(level, 0.9 * limit), 1 if limit > 10 else 2)
        return out
