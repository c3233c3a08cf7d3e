"""The common half of every service's `bootstrap()`: telemetry, database, producer, topics, loops.

A service's bootstrap builds its settings, calls `wire()`, adds its loops and routers, and that is
all; nothing here knows any domain.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from onegrid import telemetry
from onegrid.db import make_engine, migrate, ping
from onegrid.kafka.admin import broker_ready, ensure_topics
from onegrid.kafka.loop import BatchHandler, ConsumerLoop, LoopConfig, make_consumer
from onegrid.kafka.producer import make_producer
from onegrid.service import Runtime
from onegrid.settings import ServiceSettings
from onegrid.topics import CATALOGUE, INTAKE_DLQ, INTAKE_QUARANTINE, TopicSpec


@dataclass
class Wiring:
    settings: ServiceSettings
    runtime: Runtime
    engine: AsyncEngine
    producer: AIOKafkaProducer

    def add_loop(
        self,
        *,
        name: str,
        topics: Iterable[str],
        handler: BatchHandler,
        exactly_once: bool = False,
        dlq_topic: str | None = INTAKE_DLQ,
        quarantine_topic: str | None = INTAKE_QUARANTINE,
    ) -> ConsumerLoop:
        """A consumer loop in group `<service>.<name>`; exactly-once loops get their own transactional
        producer whose id is stable per instance, so a restarted instance fences its zombie."""
        s = self.settings
        group = f"{s.service_name}.{name}"
        producer = self.producer
        if exactly_once:
            producer = make_producer(
                s.kafka, client_id=f"{s.client_id}-{name}", transactional_id=f"{group}.{s.instance_id}"
            )
            self.runtime.on_start.append(producer.start)
            self.runtime.on_stop.append(producer.stop)
        loop = ConsumerLoop(
            consumer=make_consumer(s.kafka, group_id=group, client_id=f"{s.client_id}-{name}"),
            handler=handler,
            producer=producer,
            config=LoopConfig(
                group_id=group,
                topics=tuple(topics),
                service=s.service_name,
                dlq_topic=dlq_topic,
                quarantine_topic=quarantine_topic,
                exactly_once=exactly_once,
                batch_max_records=s.batch_max_records,
                batch_timeout_ms=s.batch_timeout_ms,
                commit_interval_s=s.commit_interval_s,
                dlq_max_ratio=s.dlq_max_ratio,
                dlq_max_consecutive=s.dlq_max_consecutive,
            ),
        )
        self.runtime.loops.append(loop)
        return loop


def wire(
    settings: ServiceSettings,
    *,
    migrations: Path | None,
    topics: Iterable[TopicSpec] = CATALOGUE,
) -> Wiring:
    telemetry.configure(settings.service_name, settings.telemetry)
    engine = make_engine(settings.database_url, settings.db_schema)
    producer = make_producer(settings.kafka, client_id=settings.client_id)
    rt = Runtime(settings=settings)
    specs = list(topics)

    async def prepare() -> None:
        if migrations is not None:
            await migrate(settings.database_url, settings.db_schema, migrations)
        await ensure_topics(settings.kafka, specs)
        await producer.start()

    async def close() -> None:
        await producer.stop()
        await engine.dispose()

    rt.on_start.append(prepare)
    rt.on_stop.append(close)
    rt.checks["database"] = lambda: ping(engine)
    rt.checks["kafka"] = lambda: broker_ready(settings.kafka)
    return Wiring(settings=settings, runtime=rt, engine=engine, producer=producer)
