"""Throughput per topic and consumer lag per group and partition, from sampled offsets.

Throughput is the growth of a topic's end offsets over a sliding window, divided by the window's
length. End offsets count Kafka transaction markers too, so a transactional topic shows slightly more
than the records it holds (one marker per partition per transaction); good enough to see flow.
A partition whose end offset went down (a topic deleted and recreated) counts as zero growth.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Partition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class TopicRate:
    topic: str
    partitions: int
    end_offsets: int  # sum over partitions: records written so far (plus markers)
    per_second: float

    def to_json(self) -> dict[str, object]:
        return {
            "topic": self.topic,
            "partitions": self.partitions,
            "end_offsets": self.end_offsets,
            "per_second": round(self.per_second, 3),
        }


class Throughput:
    """Keeps the samples of the last `window_s` seconds; `rates()` compares the newest with the oldest.

    `observe` takes samples in increasing time order (a monotonic clock); an older sample is ignored.
    """

    def __init__(self, window_s: float = 10.0) -> None:
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        self.window_s = window_s
        self._samples: deque[tuple[float, dict[Partition, int]]] = deque()

    def observe(self, at: float, ends: Mapping[Partition, int]) -> None:
        if self._samples and at <= self._samples[-1][0]:
            return
        self._samples.append((at, dict(ends)))
        # Keep one sample at or beyond the window's start, so the window is always fully covered.
        while len(self._samples) > 2 and self._samples[1][0] <= at - self.window_s:
            self._samples.popleft()

    def rates(self) -> list[TopicRate]:
        """One row per topic of the newest sample, sorted by rate (highest first), then name."""
        if not self._samples:
            return []
        newest_at, newest = self._samples[-1]
        oldest_at, oldest = self._samples[0]
        span = newest_at - oldest_at
        grown: dict[str, int] = {}
        totals: dict[str, int] = {}
        counts: dict[str, int] = {}
        for (topic, partition), end in newest.items():
            totals[topic] = totals.get(topic, 0) + end
            counts[topic] = counts.get(topic, 0) + 1
            before = oldest.get((topic, partition))
            growth = 0 if before is None or span <= 0 else max(0, end - before)
            grown[topic] = grown.get(topic, 0) + growth
        rows = [TopicRate(t, counts[t], totals[t], grown[t] / span if span > 0 else 0.0) for t in totals]
        return sorted(rows, key=lambda r: (-r.per_second, r.topic))


@dataclass(frozen=True, slots=True)
class Lag:
    """How far one consumer group is behind on one partition; `committed` None = nothing committed."""

    group: str
    topic: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - (self.committed or 0))

    def to_json(self) -> dict[str, object]:
        return {
            "group": self.group,
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "end": self.end,
            "lag": self.lag,
        }


def lag_rows(
    committed: Mapping[str, Mapping[Partition, int | None]], ends: Mapping[Partition, int]
) -> list[Lag]:
    """Lag of every (group, partition) with a known end offset, sorted by group, topic, partition."""
    rows = [
        Lag(group, topic, partition, offset, ends[(topic, partition)])
        for group, offsets in committed.items()
        for (topic, partition), offset in offsets.items()
        if (topic, partition) in ends
    ]
    return sorted(rows, key=lambda r: (r.group, r.topic, r.partition))


def group_totals(rows: Iterable[Lag]) -> dict[str, int]:
    """Total lag per group."""
    out: dict[str, int] = {}
    for r in rows:
        out[r.group] = out.get(r.group, 0) + r.lag
    return out


def via(headers: Mapping[str, str]) -> str | None:
    """Which way a legacy record came in, from its CloudEvent headers: the bridge that wrote it
    (`ce_bridge`, or the bridge named in `ce_source` = /onegrid/bridges/<bridge>/<sender>), else the
    source as it is (a record written to Kafka directly), None without headers."""
    bridge = headers.get("ce_bridge")
    if bridge:
        return f"bridge {bridge}"
    source = headers.get("ce_source")
    if not source:
        return None
    parts = source.strip("/").split("/")
    if len(parts) >= 3 and parts[:2] == ["onegrid", "bridges"]:
        return f"bridge {parts[2]}"
    return source
