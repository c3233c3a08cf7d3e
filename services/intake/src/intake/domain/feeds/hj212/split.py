"""Reassembly of split HJ 212 packets (Flag bit 1, PNUM/PNO), keyed by (MN, QN).

Pure and single-threaded: the caller supplies the clock (``now``) on every call and owns
persistence. Parts arrive in any order and may be repeated (devices resend unanswered packets).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from intake.domain.errors import Rejected
from intake.domain.feeds.hj212.packet import FLAG_SPLIT, Hj212Packet

SPLIT_INCOMPLETE = "hj212.split_incomplete"
SPLIT_CONFLICT = "hj212.split_conflict"

SplitKey = tuple[str, str]  # (MN, QN)


@dataclass(frozen=True, slots=True)
class AbandonedSplitSet:
    """A split set given up on: the caller dead-letters ``parts`` with ``reason``."""

    mn: str
    qn: str
    pnum: int
    parts: tuple[Hj212Packet, ...]  # ordered by PNO
    first_seen: datetime
    reason: str
    detail: str


@dataclass(slots=True)
class _OpenSet:
    pnum: int
    first_seen: datetime
    parts: dict[int, Hj212Packet]


class SplitPacketAssembler:
    """Collects the parts of split packets and returns the merged packet once all are present.

    ``add`` is idempotent for an identical repeated part, also shortly after its set completed
    (completed keys are remembered for ``timeout``). ``expire`` must be called periodically; it
    returns each set whose first part is older than ``timeout``, exactly once. When more than
    ``max_open_sets`` sets are open, the oldest is abandoned early and reported by the next ``expire``.
    """

    def __init__(self, *, timeout: timedelta, max_open_sets: int = 10_000) -> None:
        if timeout <= timedelta(0) or max_open_sets < 1:
            raise ValueError("timeout must be positive and max_open_sets at least 1")
        self._timeout = timeout
        self._max_open_sets = max_open_sets
        self._open: dict[SplitKey, _OpenSet] = {}
        self._completed: dict[SplitKey, datetime] = {}
        self._abandoned: list[AbandonedSplitSet] = []

    @property
    def open_sets(self) -> int:
        return len(self._open)

    def copy(self) -> SplitPacketAssembler:
        """An independent copy, for a batch to work on and adopt once committed. Its containers are
        new; the packets are shared (a packet never changes, and its read-only mappings cannot be
        deep-copied)."""
        other = SplitPacketAssembler(timeout=self._timeout, max_open_sets=self._max_open_sets)
        other._open = {
            key: _OpenSet(pnum=s.pnum, first_seen=s.first_seen, parts=dict(s.parts))
            for key, s in self._open.items()
        }
        other._completed = dict(self._completed)
        other._abandoned = list(self._abandoned)
        return other

    def add(self, packet: Hj212Packet, *, now: datetime) -> Hj212Packet | None:
        """Return ``packet`` itself if it is not split, the merged packet when this part completes
        its set, else ``None``. Raises ``Rejected(hj212.split_conflict)`` for a part that contradicts
        the parts already held (different PNUM, CN, ST, DataTime, or a different body for the same
        PNO or the same field); the contradicting part is not kept.
        """
        if not packet.is_split:
            return packet
        if packet.qn is None or packet.pnum is None or packet.pno is None:
            raise ValueError("split packet without QN, PNUM or PNO: not produced by parse_packet")
        key = (packet.mn, packet.qn)
        if key in self._completed:
            return None
        open_set = self._open.get(key)
        if open_set is None:
            self._make_room()
            open_set = _OpenSet(pnum=packet.pnum, first_seen=now, parts={})
            self._open[key] = open_set
        _check_consistent(open_set, packet)
        if packet.pno in open_set.parts:
            return None
        open_set.parts[packet.pno] = packet
        if len(open_set.parts) < open_set.pnum:
            return None
        del self._open[key]
        self._completed[key] = now
        return merge_parts([open_set.parts[pno] for pno in sorted(open_set.parts)])

    def expire(self, now: datetime) -> list[AbandonedSplitSet]:
        """Remove and return the sets older than the timeout (and any evicted for capacity)."""
        abandoned, self._abandoned = self._abandoned, []
        for key, open_set in list(self._open.items()):
            if now - open_set.first_seen > self._timeout:
                del self._open[key]
                have = sorted(open_set.parts)
                abandoned.append(
                    _abandon(key, open_set, SPLIT_INCOMPLETE, f"have parts {have} of {open_set.pnum}")
                )
        for key, completed_at in list(self._completed.items()):
            if now - completed_at > self._timeout:
                del self._completed[key]
        return abandoned

    def _make_room(self) -> None:
        while len(self._open) >= self._max_open_sets:
            key = min(self._open, key=lambda k: self._open[k].first_seen)
            open_set = self._open.pop(key)
            detail = f"evicted: more than {self._max_open_sets} open split sets"
            self._abandoned.append(_abandon(key, open_set, SPLIT_INCOMPLETE, detail))


def _abandon(key: SplitKey, open_set: _OpenSet, reason: str, detail: str) -> AbandonedSplitSet:
    parts = tuple(open_set.parts[pno] for pno in sorted(open_set.parts))
    return AbandonedSplitSet(key[0], key[1], open_set.pnum, parts, open_set.first_seen, reason, detail)


def _check_consistent(open_set: _OpenSet, packet: Hj212Packet) -> None:
    where = f"MN={packet.mn} QN={packet.qn} PNO={packet.pno}"
    if packet.pnum != open_set.pnum:
        raise Rejected(SPLIT_CONFLICT, f"{where}: PNUM={packet.pnum}, earlier parts say {open_set.pnum}")
    held = open_set.parts.get(packet.pno or 0)
    if held is not None:
        if held != packet:
            raise Rejected(SPLIT_CONFLICT, f"{where}: repeated part differs from the one held")
        return
    for other in open_set.parts.values():
        for attr in ("st", "cn", "pw", "flag", "data_time_text"):
            if getattr(other, attr) != getattr(packet, attr):
                raise Rejected(SPLIT_CONFLICT, f"{where}: {attr} differs from part PNO={other.pno}")
        for name, value in packet.cp_params.items():
            if other.cp_params.get(name, value) != value:
                raise Rejected(SPLIT_CONFLICT, f"{where}: CP {name} differs from part PNO={other.pno}")
        for code, fields in packet.cp_items.items():
            held_fields = other.cp_items.get(code, {})
            for suffix, value in fields.items():
                if held_fields.get(suffix, value) != value:
                    raise Rejected(
                        SPLIT_CONFLICT, f"{where}: {code}-{suffix} differs from part PNO={other.pno}"
                    )


def merge_parts(parts: list[Hj212Packet]) -> Hj212Packet:
    """Merge consistent parts (ordered by PNO) into one unsplit packet.

    The result carries the first part's head with the split bit cleared and PNUM/PNO removed, the
    union of the CP items, parameters and original codes, and the union of the tolerances.
    """
    items: dict[str, dict[str, str]] = {}
    params: dict[str, str] = {}
    original_codes: dict[str, str] = {}
    tolerances: list[str] = []
    for part in parts:
        for code, fields in part.cp_items.items():
            items.setdefault(code, {}).update(fields)
        params.update(part.cp_params)
        original_codes.update(part.original_codes)
        tolerances.extend(t for t in part.tolerances if t not in tolerances)
    first = parts[0]
    return first._replace(
        flag=None if first.flag is None else first.flag & ~FLAG_SPLIT,
        pnum=None,
        pno=None,
        cp_items=MappingProxyType({code: MappingProxyType(f) for code, f in items.items()}),
        cp_params=MappingProxyType(params),
        original_codes=MappingProxyType(original_codes),
        tolerances=tuple(tolerances),
    )
