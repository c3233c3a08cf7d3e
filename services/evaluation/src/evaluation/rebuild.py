"""Rebuild the read models from the beginning of `case.lifecycle.v1`: the proof that every figure is
reproducible from the stream.

Contract: truncates lifecycle_event, case_fact, metric_member, metric and lineage, then replays the
topic from offset zero in a fresh consumer group (nothing the service has committed is touched)
through the same projector, up to the end offsets found when the rebuild started; returns when those
are reached. Safe while the service runs: both write through `ReadModels.apply`, serialized by its
lock and idempotent, so events the service receives meanwhile are folded in whichever of the two
sees them. With a lake, the fact files of every day it replays are rewritten under the current
definition.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from evaluation.lake import LakeFacts, open_store
from evaluation.projector import Projector
from evaluation.settings import Settings
from evaluation.store import ReadModels
from onegrid.db import make_engine, migrate
from onegrid.kafka.loop import ConsumerLoop, LoopConfig, make_consumer

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class RebuildReport:
    topic: str
    group: str
    end_offsets: dict[int, int] = field(default_factory=dict)
    stored: int = 0
    repeats: int = 0
    rejected: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


async def end_offsets(settings: Settings, topic: str) -> dict[TopicPartition, int]:
    """The current end of every partition of `topic` (empty when the topic does not exist)."""
    admin = AIOKafkaAdminClient(**settings.kafka.client_kwargs())
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            return {}
        (described,) = await admin.describe_topics([topic])
        tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    finally:
        await admin.close()
    probe = AIOKafkaConsumer(isolation_level="read_committed", **settings.kafka.client_kwargs())
    await probe.start()
    try:
        return dict(await probe.end_offsets(tps))
    finally:
        await probe.stop()


async def rebuild(settings: Settings, *, poll_s: float = 0.2) -> RebuildReport:
    started = time.monotonic()
    await migrate(settings.database_url, settings.db_schema, MIGRATIONS)
    engine = make_engine(settings.database_url, settings.db_schema, pool_size=2)
    group = f"{settings.service_name}.rebuild.{uuid.uuid4().hex[:12]}"
    report = RebuildReport(topic=settings.lifecycle_topic, group=group)
    try:
        models = ReadModels(engine, settings.policy())
        await models.truncate()
        ends = await end_offsets(settings, settings.lifecycle_topic)
        report.end_offsets = {tp.partition: o for tp, o in ends.items()}
        if any(ends.values()):
            lake = (
                LakeFacts(open_store(settings.lake_url), models, settings.lifecycle_topic)
                if settings.lake_url
                else None
            )
            projector = Projector(models, dead_letters=False, after=lake.refresh if lake else None)
            consumer = make_consumer(
                settings.kafka, group_id=group, client_id=f"{settings.client_id}-rebuild"
            )
            loop = ConsumerLoop(
                consumer=consumer,
                handler=projector.handle,
                config=LoopConfig(
                    group_id=group,
                    topics=(settings.lifecycle_topic,),
                    service=settings.service_name,
                    batch_max_records=settings.batch_max_records,
                    batch_timeout_ms=settings.batch_timeout_ms,
                    wave_interval_ms=settings.wave_interval_ms,
                    commit_interval_s=settings.commit_interval_s,
                ),
            )
            running = asyncio.create_task(loop.run())
            try:
                while not running.done():
                    if loop.assigned >= set(ends) and await _reached(consumer, ends):
                        loop.stop()  # the batch in flight finishes first
                        break
                    await asyncio.sleep(poll_s)
                await running
            finally:
                if not running.done():
                    running.cancel()
            report.stored, report.repeats, report.rejected = (
                projector.stored,
                projector.repeats,
                projector.rejected,
            )
    finally:
        await engine.dispose()
    report.seconds = round(time.monotonic() - started, 3)
    return report


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True
