"""The order in which one batch of records enters the log, and the time each is recorded at.

Order: each partition's records keep their offset order (the order every reader of that partition
sees); the partitions are interleaved by the Kafka timestamp of their next record, so a case's story
reads in the order its records were produced across topics (the legacy packet before the case event
built from it), whatever the topics are called and however the consumer happened to batch them.
Equal timestamps (milliseconds) fall back to (topic, partition, offset): the same batch is always
recorded in the same order.

Time: every entry gets its own ``recorded_at``, one microsecond after the entry before it, so
``recorded_at`` strictly increases along ``seq`` (entries recorded before this rule share their
batch's instant: never decreasing). The recording order is then in every leaf, next to ``seq``, and a
verifier checks the one against the other from the entries alone.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from datetime import datetime, timedelta

_MICROSECOND = timedelta(microseconds=1)

# (Kafka timestamp in ms, topic, partition, offset) of one record of a batch.
Stamp = tuple[int, str, int, int]


def stamp(timestamp_ms: int | None, topic: str, partition: int, offset: int) -> Stamp:
    """A record's place in the recording order; a record without a timestamp (Kafka says -1) counts
    as produced at 0."""
    return (timestamp_ms if timestamp_ms and timestamp_ms > 0 else 0, topic, partition, offset)


def recording_order(stamps: Sequence[Stamp]) -> list[int]:
    """Indexes into ``stamps`` (positions distinct) in the order they are recorded (module docstring)."""
    # When every partition's timestamps rise with its offsets (one producer clock per partition, the
    # usual case), the merge is a plain sort; the check is one pass.
    ordered = sorted(range(len(stamps)), key=stamps.__getitem__)
    if _offsets_rise(stamps, ordered):
        return ordered
    return _merged(stamps)


def _offsets_rise(stamps: Sequence[Stamp], order: list[int]) -> bool:
    last: dict[tuple[str, int], int] = {}
    for i in order:
        _, topic, partition, offset = stamps[i]
        if last.get((topic, partition), -1) > offset:
            return False
        last[(topic, partition)] = offset
    return True


def _merged(stamps: Sequence[Stamp]) -> list[int]:
    runs: dict[tuple[str, int], list[int]] = {}
    for i, (_, topic, partition, _) in enumerate(stamps):
        runs.setdefault((topic, partition), []).append(i)
    partitions = [sorted(run, key=lambda i: stamps[i][3]) for run in runs.values()]
    # A merge by each partition's next record; a partition whose timestamps go back (another
    # producer's clock) is still read in offset order.
    heap = [(stamps[run[0]], p, 0) for p, run in enumerate(partitions)]
    heapq.heapify(heap)
    out: list[int] = []
    while heap:
        _, p, k = heapq.heappop(heap)
        run = partitions[p]
        out.append(run[k])
        if k + 1 < len(run):
            heapq.heappush(heap, (stamps[run[k + 1]], p, k + 1))
    return out


def recording_times(last: datetime | None, now: datetime, count: int) -> list[datetime]:
    """``count`` strictly increasing instants from ``now``, all after ``last`` (the log's newest)."""
    first = now if last is None or now > last else last + _MICROSECOND
    return [first + i * _MICROSECOND for i in range(count)]
