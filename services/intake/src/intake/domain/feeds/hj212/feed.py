"""The HJ 212 feed: packets to episode findings to Reports, with per-station state.

State is kept as one JSON slice per station (MN): the station's record and its open episodes. A
batch restores an engine from the slices of the stations it touches, works on it, and hands back
the new slices; they replace the old ones only after the batch commits (`EnvTxn.apply`), and are
also written to the compacted state topic so a restarted instance resumes the same episodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from intake.domain.coords import CoordSystem
from intake.domain.errors import Quarantined
from intake.domain.feeds.hj212.findings import EnvFinding
from intake.domain.feeds.hj212.limits import EnvRuleConfig
from intake.domain.feeds.hj212.packet import Hj212Packet, parse_packet
from intake.domain.feeds.hj212.rules import SNAPSHOT_VERSION, EnvRuleEngine
from intake.domain.feeds.hj212.split import SplitPacketAssembler
from intake.domain.localtime import LocalTime
from intake.domain.placement import Station
from intake.domain.report import Intent, Report, SourcePosition
from intake.domain.severity import Severity, from_exceedance_ratio

HJ212_PARSER = "hj212-2017/1"
_KIND_ZH = {"exceedance": "超标", "fault": "设备故障", "silence": "数据中断"}

Slice = dict[str, Any]


def split_snapshot(snapshot: Mapping[str, Any]) -> dict[str, Slice]:
    """The engine's whole snapshot as one slice per station."""
    slices: dict[str, Slice] = {
        mn: {"station": st, "episodes": []} for mn, st in snapshot["stations"].items()
    }
    for ep in snapshot["episodes"]:
        slices.setdefault(ep["mn"], {"station": None, "episodes": []})["episodes"].append(ep)
    return slices


def join_slices(slices: Mapping[str, Slice]) -> dict[str, Any]:
    return {
        "version": SNAPSHOT_VERSION,
        "episodes": [ep for s in slices.values() for ep in s["episodes"]],
        "stations": {mn: s["station"] for mn, s in slices.items() if s.get("station") is not None},
    }


@dataclass
class EnvState:
    config: EnvRuleConfig = field(default_factory=EnvRuleConfig)
    slices: dict[str, Slice] = field(default_factory=dict)
    # Parts of split packets (Flag bit 1) waiting for their siblings. Kept in memory only: a restart
    # loses incomplete sets (their parts are still in the topic and the audit trail).
    assembler: SplitPacketAssembler = field(
        default_factory=lambda: SplitPacketAssembler(timeout=timedelta(minutes=10))
    )

    def begin(self) -> EnvTxn:
        return EnvTxn(self)

    def observe(self, mn: str, piece: Slice | None) -> None:
        """A slice read back from the state topic (restart, or another instance's work). Each slice
        carries `rev`, one more than the slice it replaced: an older one than held is ignored, so a
        late echo of this instance's own earlier write never undoes a newer one."""
        if piece is None:
            self.slices.pop(mn, None)
            return
        held = self.slices.get(mn)
        if held is None or int(piece.get("rev", 0)) >= int(held.get("rev", 0)):
            self.slices[mn] = piece


class EnvTxn:
    """One batch's work on the stations' state. Each station's engine is restored from its slice
    the first time the batch touches it and kept for the rest of the batch; the new slices are taken
    once, when the batch asks for them (`changed`), not after every packet."""

    def __init__(self, state: EnvState) -> None:
        self.state = state
        self._engines: dict[str, EnvRuleEngine] = {}
        self._touched: set[str] = set()
        self._changed: dict[str, Slice] | None = None
        self._assembler: SplitPacketAssembler | None = None

    def assemble(self, packet: Hj212Packet, now: datetime) -> Hj212Packet | None:
        """The packet to process: itself, the merged packet its part completes, or None (waiting).
        Works on a copy of the assembler, adopted on `apply`, so a retried batch sees the same parts."""
        if not packet.is_split:
            return packet
        if self._assembler is None:
            self._assembler = self.state.assembler.copy()
        return self._assembler.add(packet, now=now)

    def _engine(self, mn: str) -> EnvRuleEngine:
        engine = self._engines.get(mn)
        if engine is None:
            held = self.state.slices.get(mn)
            engine = EnvRuleEngine.restore(self.state.config, join_slices({mn: held} if held else {}))
            self._engines[mn] = engine
        return engine

    def _touch(self, mn: str) -> None:
        self._touched.add(mn)
        self._changed = None

    def findings(self, packet: Hj212Packet, received_at: datetime) -> list[EnvFinding]:
        out = self._engine(packet.mn).process(packet, received_at=received_at)
        self._touch(packet.mn)
        return out

    def silence(self, now: datetime, stations: set[str] | None = None) -> list[EnvFinding]:
        """Silence findings at `now` for `stations` (default: every station known)."""
        mns = set(self.state.slices) | self._touched
        if stations is not None:
            mns &= stations
        out: list[EnvFinding] = []
        for mn in sorted(mns):
            found = self._engine(mn).check_silence(now)
            if found:
                self._touch(mn)
                out += found
        return out

    @property
    def changed(self) -> dict[str, Slice]:
        """The new slice of every station this batch changed, each with `rev` one more than the
        slice it replaces."""
        if self._changed is None:
            changed: dict[str, Slice] = {}
            for mn in self._touched:
                before = self.state.slices.get(mn) or {}
                piece = split_snapshot(self._engines[mn].snapshot()).get(
                    mn, {"station": None, "episodes": []}
                )
                piece["rev"] = int(before.get("rev", 0)) + 1
                changed[mn] = piece
            self._changed = changed
        return self._changed

    def apply(self) -> None:
        self.state.slices.update(self.changed)
        if self._assembler is not None:
            self.state.assembler = self._assembler


def finding_report(f: EnvFinding, station: Station, received_at: datetime) -> Report:
    """One finding as a Report: an opened episode reports, later findings amend that report."""
    pollutant = f.pollutant or "none"
    opened = f.status == "opened"
    source_id = f.episode_id if opened else f"{f.episode_id}:{f.status}:{f.qn or f.observed_at.isoformat()}"
    if f.kind == "exceedance" and f.value is not None and f.limit:
        severity = from_exceedance_ratio(abs(f.value) / f.limit)
    else:
        severity = Severity.IV
    title = f"{station.name} {f.pollutant or ''}{_KIND_ZH[f.kind]}".strip()
    detail = f"{f.kind} {f.status}: {f.pollutant or '-'} value={f.value} limit={f.limit} {f.unit or ''}"
    return Report(
        network="env",
        source_id=source_id,
        intent=Intent.REPORT if opened else Intent.AMEND,
        refers_to=() if opened else (f.episode_id,),
        source_code=f"{f.kind}:{f.st}:{pollutant}",
        title=title,
        description=detail.strip(),
        reported=LocalTime(utc=received_at, text=received_at.isoformat(), zone="UTC"),
        occurred=LocalTime(utc=f.observed_at, text=f.observed_at.isoformat(), zone="UTC"),
        parser_version=HJ212_PARSER,
        severity=severity,
        severity_source=None if f.value is None or not f.limit else f"{f.value}/{f.limit}",
        position=SourcePosition(station.lat, station.lon, CoordSystem.WGS84),
        division_code=station.division_code,
        grid_code=station.grid_code,
        attributes={"mn": f.mn, "episode_id": f.episode_id, "episode_status": f.status, **f.to_dict()},
    )


def reports_from_packet(raw: bytes, txn: EnvTxn, station_of: Any, received_at: datetime) -> list[Report]:
    """`station_of(mn) -> Station | None`; an unregistered MN is quarantined (replayable once the
    station is registered), never dead-lettered."""
    packet = parse_packet(raw)
    station = station_of(packet.mn)
    if station is None:
        raise Quarantined("registry.unknown_station", f"station MN {packet.mn} is not in the registry")
    whole = txn.assemble(packet, received_at)
    if whole is None:
        return []
    return [finding_report(f, station, received_at) for f in txn.findings(whole, received_at)]
