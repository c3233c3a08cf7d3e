"""The end-to-end ledger: every legacy record accounted for exactly once, per feed and hour. No I/O.

Two sides meet here, by (topic, partition, offset) of the legacy record:
- *received*: the legacy records themselves, as read from the legacy topics;
- *accounted*: what intake made of each, written in the SAME Kafka transaction as its outputs and
  its consumer offsets — a ledger entry on `intake.ledger.v1` (case reported, linked, amended,
  cancelled; a measurement with no case; a duplicate) or the dead-letter / quarantine copy, whose
  headers name the original. An aborted transaction leaves neither outputs nor accounts, so the
  accounts are exactly once whenever the outputs are, with any number of instances.

A received record with no account is *pending* while it lies at or above the intake group's
committed offset (it is in flight) and *unaccounted* when it is still below it, with no account, at
the next judgement: the offset was committed without the record's outputs, i.e. it was lost. (One
judgement is not enough: a transaction's offsets can be visible in the group before its commit marker
reaches the ledger's partition, so for a moment a committed record's account is not readable yet.) An account for an offset already accounted is a *duplicate*:
something committed the same input twice. Both are alarms.

A record forwarded to the correlation stage (intake.domain.correlate) is accounted by that stage. Its
legacy offset is committed when it is forwarded, so from then on it is judged against the stage:
pending while the stage has not read it (its position on the correlation topic is at or above the
stage's committed offset) or holds it for its turn (its order key is above the stage's horizon),
unaccounted when the stage has read it, passed its turn and written no account.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from intake.domain.process import DUPLICATE, NO_FINDING

# What a legacy record can become; the first four are case event types.
CASE_OUTCOMES = ("case.reported", "case.linked", "case.amended", "case.cancelled")
OUTCOMES = (*CASE_OUTCOMES, "measurement", "no_case", "duplicate", "dead_letter", "quarantine")
# When one record yields several events, it is counted once, under the strongest.
_STRENGTH = {o: i for i, o in enumerate(CASE_OUTCOMES)}

TopicPartition = tuple[str, int]


def hour_of(timestamp_ms: int) -> str:
    """The UTC hour a record belongs to, e.g. 2026-12-04T05:00Z."""
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%Y-%m-%dT%H:00Z")


def outcome_of(event_types: Sequence[str], no_case: str | None) -> str:
    """A processed record's outcome: its strongest case event; else why it gave none
    (intake.domain.process.Outcome.no_case): a duplicate (its source record was taken in before), a
    measurement (a record that reports nothing, e.g. HJ 212 data within limits), or `no_case` (a
    record about no real incident, e.g. a CAP message with status Test)."""
    if event_types:
        return min(event_types, key=lambda t: _STRENGTH.get(t, len(_STRENGTH)))
    if no_case == DUPLICATE:
        return "duplicate"
    if no_case is None or no_case == NO_FINDING:
        return "measurement"
    return "no_case"


@dataclass(frozen=True, slots=True)
class Account:
    """One legacy record's outcome, with the cases it touched."""

    topic: str
    partition: int
    offset: int
    outcome: str
    cases: tuple[str, ...] = ()


def entry(
    topic: str, partition: int, feed: str, accounts: Iterable[tuple[int, str, Sequence[str]]]
) -> dict[str, Any]:
    """The value of one `intake.ledger.v1` record: one input partition's accounts in one batch."""
    return {
        "topic": topic,
        "partition": partition,
        "feed": feed,
        "records": [{"offset": o, "outcome": out, "cases": list(cases)} for o, out, cases in accounts],
    }


def progress_entry(topic: str, partition: int, horizon: Sequence[Any]) -> dict[str, Any]:
    """A ledger record of the correlation stage's progress on one of its partitions: every record
    forwarded to it with an order key up to `horizon` that it has read is decided (no accounts)."""
    return {
        "topic": topic,
        "partition": partition,
        "feed": "correlation",
        "records": [],
        "horizon": list(horizon),
    }


def accounts_of_entry(value: Mapping[str, Any]) -> list[Account]:
    topic, partition = str(value["topic"]), int(value["partition"])
    return [
        Account(topic, partition, int(r["offset"]), str(r["outcome"]), tuple(r.get("cases", ())))
        for r in value["records"]
    ]


class OffsetSet:
    """Offsets as sorted half-open intervals: offsets arrive nearly in order, so this stays tiny."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def __contains__(self, offset: int) -> bool:
        i = bisect.bisect_right(self._starts, offset) - 1
        return i >= 0 and offset < self._ends[i]

    def add(self, offset: int) -> bool:
        """Add `offset`; False if it was already there."""
        i = bisect.bisect_right(self._starts, offset) - 1
        if i >= 0 and offset < self._ends[i]:
            return False
        if i >= 0 and self._ends[i] == offset:
            self._ends[i] += 1
        else:
            i += 1
            self._starts.insert(i, offset)
            self._ends.insert(i, offset + 1)
        if i + 1 < len(self._starts) and self._ends[i] == self._starts[i + 1]:
            self._ends[i] = self._ends.pop(i + 1)
            self._starts.pop(i + 1)
        return True

    @property
    def intervals(self) -> int:
        return len(self._starts)


@dataclass
class _Partition:
    feed: str
    waiting: dict[int, str] = field(default_factory=dict)  # received, not accounted: offset -> hour
    early: dict[int, Account] = field(default_factory=dict)  # accounted before it was read
    done: OffsetSet = field(default_factory=OffsetSet)
    hours: list[tuple[int, str]] = field(default_factory=list)  # (first offset, hour) change points

    def hour_at(self, offset: int) -> str:
        i = bisect.bisect_right(self.hours, (offset, "\uffff")) - 1
        return self.hours[i][1] if i >= 0 else "unknown"


@dataclass
class LedgerBook:
    """Both sides, matched as they arrive; `judge()` turns them into the table the API serves."""

    feeds: Mapping[str, str]  # legacy topic -> feed
    counts: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    parts: dict[TopicPartition, _Partition] = field(default_factory=dict)
    duplicates: list[Account] = field(default_factory=list)
    # Records below the committed offset without an account at the last judgement.
    suspects: set[tuple[str, int, int]] = field(default_factory=set)
    # Legacy records forwarded to the correlation stage and not accounted yet: where they went
    # (correlation topic, partition, offset) and their order key; and the stage's horizon per partition.
    forwards: dict[tuple[str, int, int], tuple[TopicPartition, int, tuple[Any, ...]]] = field(
        default_factory=dict
    )
    horizons: dict[TopicPartition, tuple[Any, ...]] = field(default_factory=dict)

    def forwarded(
        self, origin: tuple[str, int, int], at: TopicPartition, offset: int, order: Sequence[Any]
    ) -> None:
        p = self.parts.get((origin[0], origin[1]))
        if p is not None and origin[2] in p.done:
            return  # accounted already
        self.forwards[origin] = (at, offset, tuple(order))

    def progress(self, at: TopicPartition, horizon: Sequence[Any]) -> None:
        h = tuple(horizon)
        if at not in self.horizons or h > self.horizons[at]:
            self.horizons[at] = h

    def _decided(self, origin: tuple[str, int, int], correlated: Mapping[TopicPartition, int]) -> bool:
        """Whether the correlation stage has decided a record forwarded to it (see the module's note)."""
        at, offset, order = self.forwards[origin]
        horizon = self.horizons.get(at)
        return offset < correlated.get(at, 0) and horizon is not None and order <= horizon

    def _part(self, topic: str, partition: int) -> _Partition:
        p = self.parts.get((topic, partition))
        if p is None:
            p = self.parts[(topic, partition)] = _Partition(self.feeds.get(topic, topic))
        return p

    def _count(self, feed: str, hour: str, what: str) -> None:
        row = self.counts.setdefault((feed, hour), {})
        row[what] = row.get(what, 0) + 1

    def received(self, topic: str, partition: int, offset: int, timestamp_ms: int) -> None:
        p = self._part(topic, partition)
        hour = hour_of(timestamp_ms)
        if not p.hours or (p.hours[-1][1] != hour and offset > p.hours[-1][0]):
            p.hours.append((offset, hour))
        if offset in p.done or offset in p.waiting:
            return  # read again (a reader restart): already counted
        self._count(p.feed, hour, "received")
        acc = p.early.pop(offset, None)
        if acc is None:
            p.waiting[offset] = hour
        else:
            p.done.add(offset)
            self._count(p.feed, hour, acc.outcome)

    def accounted(self, acc: Account) -> None:
        p = self._part(acc.topic, acc.partition)
        if acc.offset in p.done or acc.offset in p.early:
            self.duplicates.append(acc)
            self._count(p.feed, p.hour_at(acc.offset), "duplicated")
            return
        self.forwards.pop((acc.topic, acc.partition, acc.offset), None)
        hour = p.waiting.pop(acc.offset, None)
        if hour is None:
            p.early[acc.offset] = acc
            return
        p.done.add(acc.offset)
        self._count(p.feed, hour, acc.outcome)

    def judge(
        self,
        committed: Mapping[TopicPartition, int],
        *,
        limit: int = 50,
        correlated: Mapping[TopicPartition, int] | None = None,
        conclusive: bool = True,
    ) -> dict[str, Any]:
        """The ledger now: per feed and hour, received = outcomes + pending + unaccounted.

        `committed`: the intake group's committed offset per legacy partition, `correlated` its
        correlation stage's per correlation partition, both read BEFORE this book caught up with the
        accounts; a record without account below them is unaccounted from the second judgement that
        finds it so (see the module's note). `conclusive=False`: the book could not catch up with
        everything written after them (a transaction still open holds its reader back), so the
        accounts of such a record may be unread yet: it stays pending, and the suspects stand as the
        last conclusive judgement left them."""
        rows: dict[tuple[str, str], dict[str, int]] = {k: dict(v) for k, v in self.counts.items()}
        lost: list[dict[str, Any]] = []
        suspects: set[tuple[str, int, int]] = set()
        for (topic, partition), p in sorted(self.parts.items()):
            upto = committed.get((topic, partition), 0)
            for offset, hour in p.waiting.items():
                what = "pending"
                origin = (topic, partition, offset)
                if origin in self.forwards:
                    settled = self._decided(origin, correlated or {})
                else:
                    settled = offset < upto
                if settled and conclusive:
                    suspects.add((topic, partition, offset))
                    if (topic, partition, offset) in self.suspects:
                        what = "unaccounted"
                row = rows.setdefault((p.feed, hour), {})
                row[what] = row.get(what, 0) + 1
                if what == "unaccounted" and len(lost) < limit:
                    lost.append({"topic": topic, "partition": partition, "offset": offset})
        if conclusive:
            self.suspects = suspects
        table = []
        totals: dict[str, int] = {}
        for (feed, hour), row in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            full = {"feed": feed, "hour": hour, "received": 0, **{o: 0 for o in OUTCOMES}}
            full.update({"pending": 0, "unaccounted": 0, "duplicated": 0})
            full.update(row)
            table.append(full)
            for k, v in row.items():
                totals[k] = totals.get(k, 0) + v
        unseen = sum(len(p.early) for p in self.parts.values())
        unaccounted = totals.get("unaccounted", 0)
        duplicated = totals.get("duplicated", 0)
        accounted = sum(totals.get(o, 0) for o in OUTCOMES)
        return {
            "balanced": unaccounted == 0
            and duplicated == 0
            and totals.get("received", 0) == accounted + totals.get("pending", 0) + unaccounted,
            "unaccounted": unaccounted,
            "duplicated": duplicated,
            "pending": totals.get("pending", 0),
            # accounts whose legacy record was not read (yet, or no longer: retention)
            "accounted_unseen": unseen,
            "totals": {"received": totals.get("received", 0), **{o: totals.get(o, 0) for o in OUTCOMES}},
            "rows": table,
            "unaccounted_records": lost,
            "duplicated_records": [
                {"topic": a.topic, "partition": a.partition, "offset": a.offset, "outcome": a.outcome}
                for a in self.duplicates[:limit]
            ],
        }
