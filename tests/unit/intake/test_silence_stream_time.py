"""Station silence on stream time, per owned partition (issue 13.7): an intake that is behind its
input opens no false 数据中断 case, and the owner of one HJ 212 partition judges only the stations of
that partition (never writes state for stations another instance owns)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import TopicPartition
from support.records import BEIJING, hj212_packet

from intake.domain.crosswalk import Crosswalk
from intake.domain.process import Intake
from intake.geography import ViewGeography
from intake.pipeline import IntakePipeline
from onegrid.kafka.memory import MemoryRecord

HJ = "legacy.env.hj212.v1"
T = datetime(2026, 11, 30, 6, 0, tzinfo=BEIJING)


@pytest.fixture
def pipeline(reference_view) -> IntakePipeline:
    return IntakePipeline(Intake(crosswalk=Crosswalk.load(), geography=ViewGeography(reference_view)))


def stations(reference_view, n: int) -> list[str]:
    return sorted(mn for mn, s in reference_view.all("station").items() if s.get("system_code") == "22")[:n]


async def feed(pipeline: IntakePipeline, partition: int, mn: str, at: datetime, offset: int) -> None:
    raw = hj212_packet(mn, at, {"a34004": 20.0})
    rec = MemoryRecord(
        HJ, partition, offset, mn.encode(), raw, (), int(at.astimezone(UTC).timestamp() * 1000)
    )
    result = await pipeline.handle([rec])
    assert not result.dead_letters, result.dead_letters
    for apply in result.after_commit:
        apply()


async def tick(pipeline: IntakePipeline, partition: int) -> list[str]:
    result = await pipeline.tick(TopicPartition(HJ, partition))
    for apply in result.after_commit:
        apply()
    return [o.key.decode() for o in result.outputs if o.topic == "intake.state.v1"]


async def test_silence_follows_each_partitions_stream_time_and_its_own_stations(
    pipeline: IntakePipeline, reference_view
) -> None:
    a, b, c = stations(reference_view, 3)
    await feed(pipeline, 0, a, T, 0)
    await feed(pipeline, 1, b, T, 0)
    # Hours of input later (the wall clock is days ahead of these timestamps): nothing is silent yet.
    assert await tick(pipeline, 0) == [] and await tick(pipeline, 1) == []
    # Partition 0 moves on three hours; station b (partition 1) is not partition 0's to judge.
    await feed(pipeline, 0, a, T + timedelta(hours=3), 1)
    assert await tick(pipeline, 0) == []
    assert await tick(pipeline, 1) == []  # partition 1's stream time has not moved
    # Partition 1 moves on too (another station): now b is silent, judged by its own partition's owner.
    await feed(pipeline, 1, c, T + timedelta(hours=3), 1)
    assert await tick(pipeline, 1) == [f"env:{b}"]
