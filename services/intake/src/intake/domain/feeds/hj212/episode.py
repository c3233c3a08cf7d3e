"""Mutable state of the environmental rules: open episodes and what is known of each station.

Both round-trip through plain JSON data (``to_dict``/``from_dict``) for the engine's snapshot.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from intake.domain.feeds.hj212.findings import FindingKind


@dataclass(slots=True)
class Episode:
    """An open episode. For an exceedance, ``direction`` is "above" or "below" its ``limit``,
    ``peak`` the worst reading so far and ``reported_peak`` the peak last sent in a finding."""

    episode_id: str
    kind: FindingKind
    mn: str
    st: str
    pollutant: str | None
    direction: str | None = None
    limit: float | None = None
    unit: str | None = None
    peak: float | None = None
    reported_peak: float | None = None
    normal_streak: int = 0

    def worse_than_peak(self, value: float) -> bool:
        if self.peak is None:
            return True
        return value > self.peak if self.direction == "above" else value < self.peak

    def peak_moved_beyond_report(self, fraction: float) -> bool:
        """Whether the peak moved away from the last reported one by more than ``fraction`` of it
        (above a high limit), or of the limit (below a low limit, where a peak may approach zero)."""
        if self.peak is None or self.reported_peak is None:
            return self.peak is not None
        if self.direction == "above":
            return self.peak - self.reported_peak > fraction * abs(self.reported_peak)
        return self.reported_peak - self.peak > fraction * abs(self.limit or 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "episode_id": self.episode_id,
            "kind": self.kind,
            "mn": self.mn,
            "st": self.st,
            "pollutant": self.pollutant,
            "direction": self.direction,
            "limit": self.limit,
            "unit": self.unit,
            "peak": self.peak,
            "reported_peak": self.reported_peak,
            "normal_streak": self.normal_streak,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Episode":
        kind = data["kind"]
        if kind not in ("exceedance", "fault", "silence"):
            raise ValueError(f"unknown episode kind {kind!r}")
        return cls(
            episode_id=str(data["episode_id"]),
            kind=cast(FindingKind, kind),
            mn=str(data["mn"]),
            st=str(data["st"]),
            pollutant=data["pollutant"],
            direction=data["direction"],
            limit=data["limit"],
            unit=data["unit"],
            peak=data["peak"],
            reported_peak=data["reported_peak"],
            normal_streak=int(data["normal_streak"]),
        )


@dataclass(slots=True)
class Station:
    """The latest data packet seen from a station: when (receipt time), its episode anchor (QN or
    DataTime) and QN, and the shortest reporting interval its commands imply (None if unknown)."""

    st: str
    last_seen: datetime
    anchor: str
    last_qn: str | None
    interval: timedelta | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "st": self.st,
            "last_seen": self.last_seen.isoformat(),
            "anchor": self.anchor,
            "last_qn": self.last_qn,
            "interval_s": None if self.interval is None else self.interval.total_seconds(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Station":
        interval = data["interval_s"]
        return cls(
            st=str(data["st"]),
            last_seen=datetime.fromisoformat(data["last_seen"]),
            anchor=str(data["anchor"]),
            last_qn=data["last_qn"],
            interval=None if interval is None else timedelta(seconds=interval),
        )
