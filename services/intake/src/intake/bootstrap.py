"""Composition root of the intake service.

Start-up order matters: the registry view and the service's own state (case book from `cases.v1`,
episode slices from `intake.state.v1`) are complete before the first legacy record is processed;
then they keep following their topics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI

from intake.cap_geometry import CapGeometry
from intake.domain.correlation import CaseBook, correlation_windows
from intake.domain.crosswalk import Crosswalk
from intake.domain.open311 import reports_from_open311
from intake.domain.process import Intake
from intake.geography import ViewGeography
from intake.ledger import LedgerReader, ledger_router
from intake.pipeline import IntakePipeline, IntakeTopics
from intake.settings import Settings
from onegrid.kafka.table import GlobalTable
from onegrid.registry_view import RegistryView
from onegrid.service import create_app
from onegrid.settings import KafkaSettings
from onegrid.topics import (
    GRID_REGISTRY,
    INTAKE_DLQ,
    INTAKE_LEDGER,
    INTAKE_QUARANTINE,
)
from onegrid.wiring import wire


@dataclass
class IntakeParts:
    view: RegistryView
    pipeline: IntakePipeline
    tables: list[GlobalTable]

    async def catch_up(self) -> None:
        for table in self.tables:
            await table.catch_up()
        self.view.grid_index()  # build the spatial index now, not on the first record

    async def handover(self, _tp: object) -> None:
        """Before a newly owned partition's first record: the state its previous owner committed
        (episode slices, cases) is applied, so no episode is opened twice and no close is missed."""
        for table in self.tables[1:]:
            await table.sync()

    async def follow(self) -> None:
        await asyncio.gather(*(t.follow() for t in self.tables))

    async def stop(self) -> None:
        for t in self.tables:
            t.stop()
        if self.pipeline.cap_geometry is not None:
            self.pipeline.cap_geometry.close()


def assemble(
    kafka: KafkaSettings,
    *,
    client_id: str,
    windows: dict[str, dict[str, float]] | None = None,
    topics: IntakeTopics | None = None,
    registry_topic: str = GRID_REGISTRY,
    cap_geometry_limit_s: float = 5.0,
) -> IntakeParts:
    """The intake's parts, on the catalogue's topics unless told otherwise (tests)."""
    topics = topics or IntakeTopics()
    view = RegistryView(eager_index=True)  # a registry change never rebuilds the index on the loop
    intake = Intake(
        crosswalk=Crosswalk.load(),
        geography=ViewGeography(view),
        book=CaseBook(windows=correlation_windows(windows or {})),
        open311=lambda inbound: reports_from_open311(inbound.value, inbound.headers),
    )
    pipeline = IntakePipeline(intake, topics=topics, ready=lambda: bool(view.all("division")))
    pipeline.cap_geometry = CapGeometry(limit_s=cap_geometry_limit_s)
    tables = [
        GlobalTable(kafka, registry_topic, view.handle, client_id=f"{client_id}-registry"),
        GlobalTable(kafka, topics.cases, pipeline.observe_cases, client_id=f"{client_id}-cases"),
        GlobalTable(kafka, topics.state, pipeline.observe_state, client_id=f"{client_id}-state"),
    ]
    return IntakeParts(view, pipeline, tables)


def bootstrap(settings: Settings | None = None) -> tuple[FastAPI, Settings]:
    settings = settings or Settings()
    # Intake's state lives in Kafka (the case book from cases.v1, episodes from intake.state.v1):
    # it keeps no database.
    w = wire(settings, migrations=None, database=False)
    topics = IntakeTopics.catalogue()
    parts = assemble(
        settings.kafka,
        client_id=settings.client_id,
        topics=topics,
        windows=settings.correlation_windows,
        cap_geometry_limit_s=settings.cap_geometry_limit_s,
    )
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
        tick_interval_s=settings.silence_check_s,
        tick=parts.pipeline.tick,
        prepare=parts.handover,
    )

    # Every legacy record accounted for (GET /v1/ledger), from the accounts the loop above writes.
    ledger = LedgerReader(
        settings.kafka,
        feeds=topics.feeds,
        ledger_topic=INTAKE_LEDGER,
        set_aside_topics=[INTAKE_DLQ, INTAKE_QUARANTINE],
        group_id=f"{settings.service_name}.legacy",
        client_id=f"{settings.client_id}-ledger",
    )
    w.runtime.background.append(ledger.run)
    w.runtime.on_stop.insert(0, _async(ledger.stop))
    w.runtime.checks["registry"] = lambda: _has_divisions(parts.view)
    app = create_app(w.runtime, title="OneGrid intake (统一受理)", routers=[ledger_router(ledger)])
    return app, settings


def _async(fn: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        fn()

    return run


async def _has_divisions(view: RegistryView) -> bool:
    return bool(view.all("division"))
