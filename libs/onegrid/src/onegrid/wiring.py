"""The common half of every service's `bootstrap()`: telemetry, database, producer, topics, loops.

A service's bootstrap builds its settings, calls `wire()`, adds its loops and routers, and that is
all; nothing here knows any domain. Kafka clients need a running event loop, so they are built in
the app's start-up, after migrations and topic creation.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from onegrid import telemetry
from onegrid.db import make_engine, migrate, ping
from onegrid.kafka.admin import broker_ready, ensure_topics
from onegrid.kafka.loop import (
    BatchHandler,
    ConsumerLoop,
    LoopConfig,
    PreparePartition,
    TickHandler,
    make_consumer,
)
from onegrid.kafka.producer import make_producer, partition_producers
from onegrid.service import Runtime
from onegrid.settings import ServiceSettings
from onegrid.topics import CATALOGUE, TopicSpec


@dataclass(frozen=True)
class LoopSpec:
    name: str
    topics: tuple[str, ...]
    handler: BatchHandler
    exactly_once: bool
    dlq_topic: str | None
    quarantine_topic: str | None
    topic_pattern: str | None = None
    tick_interval_s: float | None = None
    tick: TickHandler | None = None
    prepare: PreparePartition | None = None


@dataclass
class Wiring:
    settings: ServiceSettings
    runtime: Runtime
    # None: the service keeps no database (wire(database=False)).
    database: AsyncEngine | None
    producer: AIOKafkaProducer | None = None
    loop_specs: list[LoopSpec] = field(default_factory=list)

    @property
    def engine(self) -> AsyncEngine:
        if self.database is None:
            raise RuntimeError(f"{self.settings.service_name} was wired without a database")
        return self.database

    def add_loop(
        self,
        *,
        name: str,
        topics: Iterable[str],
        handler: BatchHandler,
        dlq_topic: str | None,
        exactly_once: bool = False,
        quarantine_topic: str | None = None,
        topic_pattern: str | None = None,
        tick_interval_s: float | None = None,
        tick: TickHandler | None = None,
        prepare: PreparePartition | None = None,
    ) -> None:
        """A consumer loop in group `<service>.<name>`, started with the app. Exactly-once loops get
        one transactional producer per input partition, with the id `<group>.<topic>.<partition>`
        (stable whichever instance owns the partition), so the owner fences any earlier one (see
        the loop's contract). `dlq_topic` is where records the handler refuses go (the service's own,
        `onegrid.topics.dlq_of`; None: a refused record stops the loop), `quarantine_topic` those it
        cannot map yet. `topic_pattern` (a regex) subscribes by pattern instead of `topics`;
        `tick_interval_s` makes the loop call `tick` (default: the handler with no records) for each
        assigned partition at that interval; `prepare` runs for each newly owned partition before its
        first record (exactly-once loops)."""
        self.loop_specs.append(
            LoopSpec(
                name,
                tuple(topics),
                handler,
                exactly_once,
                dlq_topic,
                quarantine_topic,
                topic_pattern,
                tick_interval_s,
                tick,
                prepare,
            )
        )

    def loop(self, name: str) -> ConsumerLoop:
        """The running loop added as `name` (once the clients are started)."""
        group = f"{self.settings.service_name}.{name}"
        for loop in self.runtime.loops:
            if loop.config.group_id == group:
                return loop
        raise LookupError(f"no loop {name!r} (are the clients started?)")

    async def start_clients(self) -> None:
        s = self.settings
        self.producer = make_producer(s.kafka, client_id=s.client_id)
        await self.producer.start()
        for spec in self.loop_specs:
            group = f"{s.service_name}.{spec.name}"
            consumer = functools.partial(
                make_consumer,
                s.kafka,
                group_id=group,
                client_id=f"{s.client_id}-{spec.name}",
                max_poll_interval_ms=s.max_poll_interval_ms,
            )
            self.runtime.loops.append(
                ConsumerLoop(
                    consumer=consumer(),
                    renew=consumer,
                    handler=spec.handler,
                    producer=self.producer,
                    transactional=partition_producers(
                        s.kafka, group=group, client_id=f"{s.client_id}-{spec.name}"
                    )
                    if spec.exactly_once
                    else None,
                    tick=spec.tick,
                    prepare=spec.prepare,
                    config=LoopConfig(
                        group_id=group,
                        topics=spec.topics,
                        service=s.service_name,
                        dlq_topic=spec.dlq_topic,
                        quarantine_topic=spec.quarantine_topic,
                        exactly_once=spec.exactly_once,
                        batch_max_records=s.batch_max_records,
                        batch_timeout_ms=s.batch_timeout_ms,
                        commit_interval_s=s.commit_interval_s,
                        wave_interval_ms=s.wave_interval_ms,
                        dlq_max_ratio=s.dlq_max_ratio,
                        dlq_max_consecutive=s.dlq_max_consecutive,
                        topic_pattern=spec.topic_pattern,
                        tick_interval_s=spec.tick_interval_s,
                    ),
                )
            )

    async def stop_clients(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
        if self.database is not None:
            await self.database.dispose()


def wire(
    settings: ServiceSettings,
    *,
    migrations: Path | None,
    topics: Iterable[TopicSpec] = CATALOGUE,
    database: bool = True,
) -> Wiring:
    """`database=False`: a service whose state lives in Kafka alone (no engine, no database check;
    `migrations` must then be None)."""
    if not database and migrations is not None:
        raise ValueError("migrations need a database")
    telemetry.configure(settings.service_name, settings.telemetry)
    engine = make_engine(settings.database_url, settings.db_schema) if database else None
    rt = Runtime(settings=settings)
    w = Wiring(settings=settings, runtime=rt, database=engine)
    specs = list(topics)

    async def prepare() -> None:
        if migrations is not None:
            await migrate(settings.database_url, settings.db_schema, migrations)
        await ensure_topics(settings.kafka, specs)
        await w.start_clients()

    rt.on_start.append(prepare)
    rt.on_stop.append(w.stop_clients)
    if engine is not None:
        db: AsyncEngine = engine  # named, so the check's closure sees it narrowed
        rt.checks["database"] = lambda: ping(db)
    rt.checks["kafka"] = lambda: broker_ready(settings.kafka)
    return w
