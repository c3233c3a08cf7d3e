"""The `intake_records` counter (by feed and outcome) counts every record of a batch once, under the
outcome it had, added once per distinct (feed, outcome) of the batch."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from support.records import BEIJING, hj212_packet, with_bad_crc

from intake.domain.crosswalk import Crosswalk
from intake.domain.process import Intake
from intake.geography import ViewGeography
from intake.pipeline import IntakePipeline
from onegrid.kafka.memory import MemoryRecord

HJ = "legacy.env.hj212.v1"
T = datetime(2026, 11, 30, 6, 0, tzinfo=BEIJING)


class RecordingCounter:
    def __init__(self) -> None:
        self.adds: list[tuple[int, dict[str, str]]] = []

    def add(self, amount: int, attributes: dict[str, str], *_: Any) -> None:
        self.adds.append((amount, dict(attributes)))


async def test_every_record_is_counted_once_under_its_outcome(reference_view) -> None:
    pipeline = IntakePipeline(Intake(crosswalk=Crosswalk.load(), geography=ViewGeography(reference_view)))
    counter = RecordingCounter()
    pipeline._m_outcomes = counter  # type: ignore[assignment]
    mns = sorted(mn for mn, s in reference_view.all("station").items() if s.get("system_code") == "22")[:4]
    raws = [hj212_packet(mn, T + timedelta(minutes=i), {"a34004": 20.0}) for i, mn in enumerate(mns)]
    raws += [with_bad_crc(raws[0]), with_bad_crc(raws[1]), b"not a packet"]
    ms = int(T.astimezone(UTC).timestamp() * 1000)
    records = [MemoryRecord(HJ, 0, i, None, raw, (), ms) for i, raw in enumerate(raws)]

    result = await pipeline.handle(records)

    counted: Counter[tuple[str, str]] = Counter()
    for amount, attrs in counter.adds:
        counted[(attrs["feed"], attrs["outcome"])] += amount
    assert sum(counted.values()) == len(records)
    refused = Counter(("hj212", d.reason) for d in result.dead_letters)
    assert len(result.dead_letters) == 3
    assert {k: v for k, v in counted.items() if not k[1].startswith(("ok", "no case"))} == refused
    assert counted[("hj212", "no case: no finding")] == 4
    # One addition per distinct (feed, outcome), not one per record.
    assert len(counter.adds) == len(counted)
