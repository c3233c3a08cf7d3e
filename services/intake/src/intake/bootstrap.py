"""Composition root of the intake service.

Start-up order matters: the registry view and the service's own state (case book from `cases.v1`
since the taken-in horizon, episode slices from `intake.state.v1`) are complete before the first legacy record is processed;
then they keep following their topics.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import TopicPartition
from fastapi import FastAPI

from intake.cap_geometry import CapGeometry
from intake.domain.correlation import CaseBook, correlation_windows
from intake.domain.crosswalk import Crosswalk
from intake.domain.feeds.open311.record import reports_from_open311
from intake.domain.process import Intake
from intake.geography import ViewGeography
from intake.ledger import LedgerReader, ledger_router
from intake.pipeline import IntakePipeline, IntakeTopics
from intake.settings import Settings
from onegrid.kafka.admin import partition_counts
from onegrid.kafka.loop import ConsumerLoop, LoopConfig, make_consumer
from onegrid.kafka.producer import partition_producers
from onegrid.kafka.table import GlobalTable
from onegrid.service import create_app
from onegrid.settings import KafkaSettings
from onegrid.topics import (
    GRID_REGISTRY,
    INTAKE_CORRELATE,
    INTAKE_DLQ,
    INTAKE_LEDGER,
    INTAKE_QUARANTINE,
)
from onegrid.wiring import Wiring, wire
from registry_client import RegistryView


@dataclass
class IntakeParts:
    view: RegistryView
    pipeline: IntakePipeline
    tables: list[GlobalTable]

    kafka: KafkaSettings | None = None

    async def catch_up(self) -> None:
        for table in self.tables:
            await table.catch_up()
        self.view.grid_index()  # build the spatial index now, not on the first record
        if self.kafka is not None and self.pipeline.topics.correlate is not None:
            self.pipeline.sources = await forwarding_sources(self.kafka, self.pipeline)

    async def handover(self, _tp: object) -> None:
        """Before a newly owned partition's first record: the state its previous owner committed
        (episode slices, cases) is applied, so no episode is opened twice and no close is missed."""
        for table in self.tables[1:]:
            await table.sync()

    async def take_region(self, tp: TopicPartition) -> None:
        """Before a newly owned correlation partition's first record: its queue and the cases it
        decided, as its previous owner committed them."""
        for table in self.tables[1:]:
            await table.sync()
        self.pipeline.take_over(tp.partition)

    def loops(
        self,
        kafka: KafkaSettings,
        *,
        group_prefix: str,
        client_id: str,
        tick_interval_s: float | None = None,
        **config: Any,
    ) -> list[ConsumerLoop]:
        """The intake's exactly-once loops on its topics (tests and tools run them without the app):
        the legacy feeds in group `<prefix>.legacy`, the correlation stage in `<prefix>.correlate`.
        `tick_interval_s` is the legacy loop's (idle watermarks, silence); the stage has no ticks."""
        p = self.pipeline
        specs: list[tuple[str, tuple[str, ...], Any, Any, Any]] = [
            ("legacy", tuple(p.topics.feeds), p.handle, p.tick, self.handover)
        ]
        if p.topics.correlate is not None:
            specs.append(("correlate", (p.topics.correlate,), p.correlate, None, self.take_region))
        out = []
        for name, topics, handler, tick, prepare in specs:
            group = f"{group_prefix}.{name}"
            consumer = functools.partial(
                make_consumer, kafka, group_id=group, client_id=f"{client_id}-{name}"
            )
            loop = ConsumerLoop(
                consumer=consumer(),
                renew=consumer,
                handler=handler,
                transactional=partition_producers(kafka, group=group, client_id=f"{client_id}-{name}-t"),
                tick=tick,
                prepare=prepare,
                config=LoopConfig(
                    group_id=group,
                    topics=topics,
                    service="intake",
                    exactly_once=True,
                    tick_interval_s=tick_interval_s if tick is not None else None,
                    **config,
                ),
            )
            out.append(loop)
        if p.topics.correlate is not None:
            p.caught_up = out[0].caught_up
            p.read_to_end = out[0].read_to_end
        return out

    async def follow(self) -> None:
        await asyncio.gather(*(t.follow() for t in self.tables))

    async def stop(self) -> None:
        for t in self.tables:
            t.stop()
        if self.pipeline.cap_geometry is not None:
            self.pipeline.cap_geometry.close()


def intake_parts(
    kafka: KafkaSettings,
    *,
    client_id: str,
    windows: dict[str, dict[str, float]] | None = None,
    topics: IntakeTopics | None = None,
    registry_topic: str = GRID_REGISTRY,
    cap_geometry_limit_s: float = 5.0,
    taken_in_horizon: timedelta | None = None,
) -> IntakeParts:
    """The intake's parts, on the catalogue's topics unless told otherwise (tests).

    `taken_in_horizon`: how long a source key stays in the case book, and how far back `cases.v1`
    is read at start (None: all of it, kept for ever)."""
    topics = topics or IntakeTopics()
    view = RegistryView(eager_index=True)  # a registry change never rebuilds the index on the loop
    intake = Intake(
        crosswalk=Crosswalk.load(),
        geography=ViewGeography(view),
        book=CaseBook(windows=correlation_windows(windows or {}), keep_sources=taken_in_horizon),
        open311=lambda inbound: reports_from_open311(inbound.value, inbound.headers),
    )
    # With a correlation stage, reports that may join another network's case are decided there.
    intake.deferred = topics.correlate is not None
    registry = GlobalTable(kafka, registry_topic, view.handle, client_id=f"{client_id}-registry")
    view.more_coming = registry.more_known
    pipeline = IntakePipeline(
        intake,
        topics=topics,
        ready=lambda: bool(view.all("division")),
        settle=registry.until_current,
    )
    pipeline.cap_geometry = CapGeometry(limit_s=cap_geometry_limit_s)
    tables = [
        registry,
        GlobalTable(
            kafka,
            topics.cases,
            pipeline.observe_cases,
            client_id=f"{client_id}-cases",
            since=None if taken_in_horizon is None else functools.partial(_ago, taken_in_horizon),
        ),
        GlobalTable(kafka, topics.state, pipeline.observe_state, client_id=f"{client_id}-state"),
    ]
    if topics.correlate_state is not None:
        tables.append(
            GlobalTable(
                kafka,
                topics.correlate_state,
                pipeline.observe_state,
                client_id=f"{client_id}-correlate-state",
            )
        )
    return IntakeParts(view, pipeline, tables, kafka)


def _ago(span: timedelta) -> datetime:
    return datetime.now(UTC) - span


async def forwarding_sources(kafka: KafkaSettings, pipeline: IntakePipeline) -> frozenset[tuple[str, int]]:
    """Every (feed, partition) whose watermark the correlation stage waits for."""
    topics = [t for t in pipeline.topics.feeds if pipeline._forwards(t)]
    counts = await partition_counts(kafka, topics)
    return frozenset((pipeline.topics.feeds[t], p) for t in topics for p in range(counts[t]))


@dataclass
class IntakeService:
    app: FastAPI
    settings: Settings
    wiring: Wiring
    parts: IntakeParts
    ledger: LedgerReader


def bootstrap(settings: Settings | None = None) -> IntakeService:
    settings = settings or Settings()
    # Intake's state lives in Kafka (the case book from cases.v1, episodes from intake.state.v1):
    # it keeps no database.
    w = wire(settings, migrations=None, database=False)
    topics = IntakeTopics.catalogue()
    parts = intake_parts(
        settings.kafka,
        client_id=settings.client_id,
        topics=topics,
        windows=settings.correlation_windows,
        cap_geometry_limit_s=settings.cap_geometry_limit_s,
        taken_in_horizon=timedelta(seconds=settings.taken_in_horizon_s),
    )
    parts.pipeline.silence_check_s = settings.silence_check_s
    parts.pipeline.watermark_interval_s = settings.watermark_interval_s
    w.runtime.on_start.append(parts.catch_up)
    w.runtime.background.append(parts.follow)
    w.runtime.on_stop.insert(0, parts.stop)
    # Legacy record -> case event inside one Kafka transaction per batch: exactly once.
    w.add_loop(
        name="legacy",
        topics=list(topics.feeds),
        handler=parts.pipeline.handle,
        exactly_once=True,
        dlq_topic=INTAKE_DLQ,
        quarantine_topic=INTAKE_QUARANTINE,
        tick_interval_s=settings.legacy_tick_s,
        tick=parts.pipeline.tick,
        prepare=parts.handover,
    )
    # The correlation stage: one region's reports decided by one owner, in one order (issue 13.8).
    w.add_loop(
        name="correlate",
        topics=[INTAKE_CORRELATE],
        handler=parts.pipeline.correlate,
        exactly_once=True,
        dlq_topic=INTAKE_DLQ,
        quarantine_topic=INTAKE_QUARANTINE,
        prepare=parts.take_region,
    )
    parts.pipeline.caught_up = lambda tp: w.loop("legacy").caught_up(tp)
    parts.pipeline.read_to_end = lambda tp, offset: w.loop("legacy").read_to_end(tp, offset)

    # Every legacy record accounted for (GET /v1/ledger), from the accounts the loop above writes.
    ledger = LedgerReader(
        settings.kafka,
        feeds=topics.feeds,
        ledger_topic=INTAKE_LEDGER,
        set_aside_topics=[INTAKE_DLQ, INTAKE_QUARANTINE],
        group_id=f"{settings.service_name}.legacy",
        correlate_topic=INTAKE_CORRELATE,
        correlate_group=f"{settings.service_name}.correlate",
        client_id=f"{settings.client_id}-ledger",
    )
    w.runtime.background.append(ledger.run)
    w.runtime.on_stop.insert(0, _async(ledger.stop))
    w.runtime.checks["registry"] = lambda: _has_divisions(parts.view)
    app = create_app(w.runtime, title="OneGrid intake (统一受理)", routers=[ledger_router(ledger)])
    return IntakeService(app, settings, w, parts, ledger)


def _async(fn: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        fn()

    return run


async def _has_divisions(view: RegistryView) -> bool:
    return bool(view.all("division"))
