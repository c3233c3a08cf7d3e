"""Dead letters (intake.dlq.v1) and quarantined records (intake.quarantine.v1) as operators see them.

Both topics hold the original record unchanged plus `dlq_*` / `quarantine_*` headers
(contracts/README.md, "Dead letters and quarantine"). The book counts them by reason, keeps the
latest few of each kind for display, and remembers every quarantined position by reason so that
"replay all of this reason" needs no scan of the topic. Replaying re-produces the original value,
key and headers (without the `quarantine_*` ones) to the topic named in `quarantine_topic`; intake
quarantines it again if the code is still unmapped.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

Headers = Sequence[tuple[str, bytes]]
KINDS = ("dlq", "quarantine")
REPLAY_OF = "replay_of"
REPLAY_BY = "replay_by"


@dataclass(frozen=True, slots=True, order=True)
class Position:
    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True, slots=True)
class SetAside:
    """One record on the DLQ or in quarantine: where it is, where it came from and why."""

    kind: str
    position: Position
    origin: Position | None
    reason: str
    detail: str
    stage: str | None
    service: str | None
    at: str | None
    key: str | None
    size: int

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "position": str(self.position),
            "topic": self.position.topic,
            "partition": self.position.partition,
            "offset": self.position.offset,
            "origin": None if self.origin is None else str(self.origin),
            "reason": self.reason,
            "detail": self.detail,
            "stage": self.stage,
            "service": self.service,
            "at": self.at,
            "key": self.key,
            "size": self.size,
        }


def _text(headers: Headers, name: str) -> str | None:
    for k, v in reversed(list(headers)):
        if k == name:
            return (v or b"").decode("utf-8", "replace")
    return None


def describe(
    kind: str, position: Position, key: bytes | None, value: bytes | None, headers: Headers
) -> SetAside:
    """What a DLQ or quarantine record says about itself. Total: missing headers read as unknown."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    origin = None
    topic, partition, offset = (_text(headers, f"{kind}_{n}") for n in ("topic", "partition", "offset"))
    if topic and partition and offset and partition.isdigit() and offset.isdigit():
        origin = Position(topic, int(partition), int(offset))
    return SetAside(
        kind=kind,
        position=position,
        origin=origin,
        reason=_text(headers, f"{kind}_reason") or "unknown",
        detail=_text(headers, f"{kind}_detail") or "",
        stage=_text(headers, f"{kind}_stage"),
        service=_text(headers, f"{kind}_service"),
        at=_text(headers, f"{kind}_timestamp"),
        key=None if key is None else key.decode("utf-8", "replace"),
        size=len(value or b""),
    )


class NotReplayable(ValueError):
    """The record cannot be replayed; the message says why."""


@dataclass(frozen=True, slots=True)
class Replay:
    """The record to produce for a replay: the original's bytes to its original topic."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def replay_of(
    position: Position, key: bytes | None, value: bytes | None, headers: Headers, actor: str
) -> Replay:
    """The original record behind a quarantined one, with `replay_of`/`replay_by` saying who sent it
    back from where (intake ignores them; the audit trail and a re-quarantine keep them)."""
    target = _text(headers, "quarantine_topic")
    if not target:
        raise NotReplayable(f"{position} has no quarantine_topic header: it is not a quarantined record")
    if value is None:
        raise NotReplayable(f"{position} is a tombstone: nothing to replay")
    kept = [(k, v) for k, v in headers if not k.startswith("quarantine_") and k not in (REPLAY_OF, REPLAY_BY)]
    kept += [(REPLAY_OF, str(position).encode()), (REPLAY_BY, actor.encode())]
    return Replay(target, key, value, kept)


@dataclass
class Shelf:
    """The records of one kind: counts by reason, the latest few, and (quarantine) every position."""

    latest: deque[SetAside]
    by_reason: Counter[str] = field(default_factory=Counter)
    positions: dict[str, list[Position]] = field(default_factory=dict)
    total: int = 0


class SetAsideBook:
    def __init__(self, keep_latest: int = 50) -> None:
        self.shelves = {k: Shelf(latest=deque(maxlen=keep_latest)) for k in KINDS}
        self.replayed: dict[Position, tuple[str, str]] = {}  # position -> (actor, at)

    def add(self, item: SetAside) -> None:
        shelf = self.shelves[item.kind]
        shelf.total += 1
        shelf.by_reason[item.reason] += 1
        shelf.latest.append(item)
        if item.kind == "quarantine":
            shelf.positions.setdefault(item.reason, []).append(item.position)

    def positions(self, reason: str) -> list[Position]:
        """Every quarantined record of `reason` seen so far, in topic order."""
        return sorted(self.shelves["quarantine"].positions.get(reason, []))

    def mark_replayed(self, position: Position, actor: str, at: str) -> None:
        self.replayed[position] = (actor, at)

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for kind, shelf in self.shelves.items():
            latest = []
            for item in reversed(shelf.latest):
                row = item.to_json()
                done = self.replayed.get(item.position)
                row["replayed_by"], row["replayed_at"] = done if done else (None, None)
                latest.append(row)
            out[kind] = {
                "total": shelf.total,
                "by_reason": [{"reason": r, "count": n} for r, n in shelf.by_reason.most_common()],
                "latest": latest,
            }
        return out
