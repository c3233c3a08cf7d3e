"""Environmental rules: HJ 212 packets in, episode findings out (never one case per packet).

Episodes, per station (MN):
- exceedance, per pollutant: opens on the first reading beyond its limit, stays one episode while
  readings stay beyond, closes after ``close_after_normal`` consecutive readings within the limit;
- fault, per pollutant: opens on data flag D (fault) or B (communication fault), closes after
  ``close_after_normal`` consecutive readings flagged N or T (or unflagged);
- silence: opened by ``check_silence`` when no data packet came for longer than the station's
  threshold, closed by the station's next data packet.
Readings flagged F, M, S, C (stopped, maintenance, manual, calibration), with a flag the standard
does not name, or with an unreadable value neither breach nor count as normal. Field suffixes and
flag letters mean the same in any letter case (``a34004-flag=d`` is a fault). Packets whose CN is not a data command are ignored entirely.

The engine is pure and deterministic: the caller supplies receipt and check times, and
``snapshot``/``restore`` carry the whole state, so restore-then-continue equals uninterrupted
processing.
"""

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from intake.domain.feeds.hj212.codes import FAULT_FLAGS, MEASURING_FLAGS, data_flag, item_field
from intake.domain.feeds.hj212.episode import Episode, Station
from intake.domain.feeds.hj212.findings import EnvFinding, FindingKind, FindingStatus, episode_id
from intake.domain.feeds.hj212.limits import EnvRuleConfig, Limit
from intake.domain.feeds.hj212.packet import Hj212Packet

SNAPSHOT_VERSION = 1
_VALID_FLAGS = MEASURING_FLAGS

EpisodeKey = tuple[str, str, FindingKind]  # (MN, pollutant or "", kind)


class _Reading(NamedTuple):  # one per item of every packet: a tuple is made in one step
    packet: Hj212Packet
    code: str
    value: float | None
    flag: str | None
    observed_at: datetime
    anchor: str


class EnvRuleEngine:
    """Turns packets into ``EnvFinding``s. Not thread-safe; one instance per consumer partition."""

    def __init__(self, config: EnvRuleConfig) -> None:
        self._config = config
        self._episodes: dict[EpisodeKey, Episode] = {}
        self._stations: dict[str, Station] = {}

    def process(self, packet: Hj212Packet, *, received_at: datetime) -> list[EnvFinding]:
        """Findings caused by ``packet`` (received at the aware time ``received_at``), in a stable
        order: silence closing first, then per pollutant code (sorted) fault before exceedance."""
        if packet.cn not in self._config.data_commands:
            return []
        observed_at = packet.cp_data_time or received_at
        anchor = packet.qn or packet.data_time_text or received_at.isoformat()
        findings: list[EnvFinding] = []
        silence = self._episodes.pop((packet.mn, "", "silence"), None)
        if silence is not None:
            findings.append(self._finding(silence, "closed", observed_at, packet.qn, None, None))
        self._see_station(packet, received_at, anchor)
        for code in sorted(packet.cp_items):
            fields = packet.cp_items[code]
            flag = data_flag(fields)
            value = _reading(fields, self._config.value_fields)
            reading = _Reading(packet, code, value, flag, observed_at, anchor)
            findings.extend(self._fault(reading))
            limit = self._config.limit_for(packet.st, code)
            if limit is not None and flag in _VALID_FLAGS and value is not None:
                findings.extend(self._exceedance(reading, limit, value))
        return findings

    def check_silence(self, now: datetime) -> list[EnvFinding]:
        """Open a silence episode for every known station quiet for longer than its threshold."""
        findings: list[EnvFinding] = []
        for mn in sorted(self._stations):
            station = self._stations[mn]
            key: EpisodeKey = (mn, "", "silence")
            if key in self._episodes:
                continue
            if now - station.last_seen <= self._config.silence_threshold(mn, station.interval):
                continue
            episode = Episode(
                episode_id=episode_id(mn, None, "silence", station.anchor),
                kind="silence",
                mn=mn,
                st=station.st,
                pollutant=None,
            )
            self._episodes[key] = episode
            findings.append(self._finding(episode, "opened", now, station.last_qn, None, None))
        return findings

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-serializable data (restore with ``EnvRuleEngine.restore``)."""
        return {
            "version": SNAPSHOT_VERSION,
            "episodes": [self._episodes[key].to_dict() for key in sorted(self._episodes)],
            "stations": {mn: self._stations[mn].to_dict() for mn in sorted(self._stations)},
        }

    @classmethod
    def restore(cls, config: EnvRuleConfig, snapshot: Mapping[str, Any]) -> "EnvRuleEngine":
        """An engine continuing from ``snapshot``; raises ``ValueError`` for an unknown version."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported snapshot version {snapshot.get('version')!r}")
        engine = cls(config)
        for data in snapshot["episodes"]:
            episode = Episode.from_dict(data)
            engine._episodes[(episode.mn, episode.pollutant or "", episode.kind)] = episode
        for mn, data in snapshot["stations"].items():
            engine._stations[mn] = Station.from_dict(data)
        return engine

    def _see_station(self, packet: Hj212Packet, received_at: datetime, anchor: str) -> None:
        implied = self._config.command_intervals.get(packet.cn)
        station = self._stations.get(packet.mn)
        if station is None:
            self._stations[packet.mn] = Station(packet.st, received_at, anchor, packet.qn, implied)
            return
        if received_at >= station.last_seen:
            station.last_seen, station.anchor, station.last_qn = received_at, anchor, packet.qn
        station.st = packet.st
        if implied is not None and (station.interval is None or implied < station.interval):
            station.interval = implied

    def _fault(self, r: _Reading) -> list[EnvFinding]:
        key: EpisodeKey = (r.packet.mn, r.code, "fault")
        episode = self._episodes.get(key)
        if r.flag in FAULT_FLAGS:
            if episode is None:
                episode = Episode(
                    episode_id=episode_id(r.packet.mn, r.code, "fault", r.anchor),
                    kind="fault",
                    mn=r.packet.mn,
                    st=r.packet.st,
                    pollutant=r.code,
                )
                self._episodes[key] = episode
                return [self._finding(episode, "opened", r.observed_at, r.packet.qn, r.value, r.flag)]
            episode.normal_streak = 0
            return []
        if episode is None or r.flag not in _VALID_FLAGS:
            return []
        return self._count_normal(key, episode, r)

    def _exceedance(self, r: _Reading, limit: Limit, value: float) -> list[EnvFinding]:
        key: EpisodeKey = (r.packet.mn, r.code, "exceedance")
        episode = self._episodes.get(key)
        direction = _breach(limit, value)
        if direction is None:
            return [] if episode is None else self._count_normal(key, episode, r)
        if episode is None:
            episode = Episode(
                episode_id=episode_id(r.packet.mn, r.code, "exceedance", r.anchor),
                kind="exceedance",
                mn=r.packet.mn,
                st=r.packet.st,
                pollutant=r.code,
                direction=direction,
                limit=limit.high if direction == "above" else limit.low,
                unit=limit.unit,
                peak=value,
                reported_peak=value,
            )
            self._episodes[key] = episode
            return [self._finding(episode, "opened", r.observed_at, r.packet.qn, value, r.flag)]
        episode.normal_streak = 0
        if direction != episode.direction or not episode.worse_than_peak(value):
            return []
        episode.peak = value
        if not episode.peak_moved_beyond_report(self._config.update_fraction):
            return []
        episode.reported_peak = value
        return [self._finding(episode, "updated", r.observed_at, r.packet.qn, value, r.flag)]

    def _count_normal(self, key: EpisodeKey, episode: Episode, r: _Reading) -> list[EnvFinding]:
        episode.normal_streak += 1
        if episode.normal_streak < self._config.close_after_normal:
            return []
        del self._episodes[key]
        return [self._finding(episode, "closed", r.observed_at, r.packet.qn, r.value, r.flag)]

    @staticmethod
    def _finding(
        episode: Episode,
        status: FindingStatus,
        observed_at: datetime,
        qn: str | None,
        value: float | None,
        data_flag: str | None,
    ) -> EnvFinding:
        return EnvFinding(
            kind=episode.kind,
            status=status,
            mn=episode.mn,
            st=episode.st,
            pollutant=episode.pollutant,
            value=value,
            limit=episode.limit,
            unit=episode.unit,
            data_flag=data_flag,
            observed_at=observed_at,
            episode_id=episode.episode_id,
            qn=qn,
            peak=episode.peak,
        )


def _reading(fields: Mapping[str, str], suffixes: tuple[str, ...]) -> float | None:
    for suffix in suffixes:
        text = item_field(fields, suffix)
        if text is not None:
            try:
                value = float(text)
            except ValueError:
                return None
            return value if math.isfinite(value) else None
    return None


def _breach(limit: Limit, value: float) -> str | None:
    if limit.high is not None and value > limit.high:
        return "above"
    if limit.low is not None and value < limit.low:
        return "below"
    return None


__all__ = ["EnvFinding", "EnvRuleConfig", "EnvRuleEngine", "Limit"]
