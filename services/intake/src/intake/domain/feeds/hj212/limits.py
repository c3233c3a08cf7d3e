"""Configuration of the environmental rules: limits per (station type, pollutant) and episode tuning.

Defaults: GB 3095-2012 grade II ambient limits for air stations (ST=22) and typical discharge
limits (GB 18918-2002 class 1A) for water pollution sources (ST=32). Units follow what HJ 212 air
stations report: µg/m³, except CO in mg/m³.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

from intake.domain.feeds.hj212.codes import DATA_COMMANDS

ST_AIR_QUALITY = "22"
ST_WATER_POLLUTION_SOURCE = "32"


@dataclass(frozen=True, slots=True)
class Limit:
    """A reading is an exceedance when it is above ``high`` or below ``low`` (either may be None)."""

    high: float | None = None
    low: float | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        if self.high is None and self.low is None:
            raise ValueError("a limit needs high, low or both")
        if self.high is not None and self.low is not None and self.low >= self.high:
            raise ValueError(f"low {self.low} must be below high {self.high}")


def default_limits() -> Mapping[tuple[str, str], Limit]:
    """Limits keyed by (ST, HJ 212-2017 pollutant code)."""
    air, water = ST_AIR_QUALITY, ST_WATER_POLLUTION_SOURCE
    return MappingProxyType(
        {
            (air, "a34004"): Limit(high=75, unit="µg/m³"),  # PM2.5, 24 h mean
            (air, "a34002"): Limit(high=150, unit="µg/m³"),  # PM10, 24 h mean
            (air, "a21026"): Limit(high=150, unit="µg/m³"),  # SO2, 24 h mean
            (air, "a21004"): Limit(high=80, unit="µg/m³"),  # NO2, 24 h mean
            (air, "a21005"): Limit(high=4, unit="mg/m³"),  # CO, 24 h mean
            (air, "a05024"): Limit(high=200, unit="µg/m³"),  # O3, 1 h mean
            (water, "w01018"): Limit(high=50, unit="mg/L"),  # COD
            (water, "w21003"): Limit(high=5, unit="mg/L"),  # ammonia nitrogen
            (water, "w01001"): Limit(low=6, high=9, unit="pH"),
        }
    )


def _default_command_intervals() -> Mapping[str, timedelta]:
    # Real-time (2011) and minute (2051) intervals are set per device, so they imply nothing.
    return MappingProxyType({"2061": timedelta(hours=1), "2031": timedelta(days=1)})


@dataclass(frozen=True, slots=True)
class EnvRuleConfig:
    """Tuning of ``EnvRuleEngine``; immutable, built once by the service's bootstrap.

    - ``value_fields``: the first of these CP field suffixes present is the reading checked.
    - ``close_after_normal``: consecutive normal readings that close an exceedance or fault episode.
    - ``update_fraction``: an open exceedance emits "updated" only when its peak moved beyond the last
      reported peak by more than this fraction (of the reported peak; of the limit for a low limit).
    - Silence threshold of a station: ``silence_thresholds[mn]`` if given, else ``silence_multiplier``
      × its expected interval (``expected_intervals[mn]``, else the shortest interval implied by the
      commands it sent, see ``command_intervals``), else ``unknown_silence_threshold``.
    """

    limits: Mapping[tuple[str, str], Limit] = field(default_factory=default_limits)
    value_fields: tuple[str, ...] = ("Avg", "Rtd")
    close_after_normal: int = 3
    update_fraction: float = 0.2
    data_commands: frozenset[str] = DATA_COMMANDS
    silence_thresholds: Mapping[str, timedelta] = field(default_factory=lambda: MappingProxyType({}))
    expected_intervals: Mapping[str, timedelta] = field(default_factory=lambda: MappingProxyType({}))
    command_intervals: Mapping[str, timedelta] = field(default_factory=_default_command_intervals)
    silence_multiplier: int = 3
    unknown_silence_threshold: timedelta = timedelta(hours=2)

    def __post_init__(self) -> None:
        if self.close_after_normal < 1:
            raise ValueError("close_after_normal must be at least 1")
        if self.update_fraction < 0:
            raise ValueError("update_fraction must not be negative")
        if self.silence_multiplier < 1 or self.unknown_silence_threshold <= timedelta(0):
            raise ValueError("silence thresholds must be positive")
        if not self.value_fields:
            raise ValueError("value_fields must name at least one CP field suffix")

    def limit_for(self, st: str, pollutant: str) -> Limit | None:
        return self.limits.get((st, pollutant))

    def silence_threshold(self, mn: str, implied_interval: timedelta | None) -> timedelta:
        if mn in self.silence_thresholds:
            return self.silence_thresholds[mn]
        interval = self.expected_intervals.get(mn, implied_interval)
        if interval is None:
            return self.unknown_silence_threshold
        return self.silence_multiplier * interval
