"""Composition root of the intake service.

Start-up order matters: the registry view and the service's own state (case book from `cases.v1`,
episode slices from `intake.state.v1`) are complete before the first legacy record is processed;
then they keep following their topics.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI

from intake.api import router
from intake.domain.crosswalk import Crosswalk
from intake.domain.process import LEGACY_FEEDS, Intake
from intake.geography import ViewGeography
from intake.pipeline import IntakePipeline
from intake.settings import Settings
from onegrid.kafka.table import GlobalTable
from onegrid.registry_view import RegistryView
from onegrid.service import create_app
from onegrid.topics import CASES, GRID_REGISTRY, INTAKE_STATE
from onegrid.wiring import wire


def bootstrap(settings: Settings | None = None) -> tuple[FastAPI, Settings]:
    settings = settings or Settings()
    w = wire(settings, migrations=Path(__file__).parent / "migrations")
    view = RegistryView()
    intake = Intake(crosswalk=Crosswalk.load(), geography=ViewGeography(view))
    pipeline = IntakePipeline(intake, state_topic=INTAKE_STATE, ready=lambda: bool(view.all("division")))
    kafka = settings.kafka
    tables = [
        GlobalTable(kafka, GRID_REGISTRY, view.handle, client_id=f"{settings.client_id}-registry"),
        GlobalTable(kafka, CASES, pipeline.observe_cases, client_id=f"{settings.client_id}-cases"),
        GlobalTable(kafka, INTAKE_STATE, pipeline.observe_state, client_id=f"{settings.client_id}-state"),
    ]

    async def catch_up() -> None:
        for table in tables:
            await table.catch_up()
        view.grid_index()  # build the spatial index now, not on the first record

    async def follow_tables() -> None:
        await asyncio.gather(*(t.follow() for t in tables))

    async def stop_tables() -> None:
        for t in tables:
            t.stop()

    w.runtime.on_start.append(catch_up)
    w.runtime.background.append(follow_tables)
    w.runtime.on_stop.insert(0, stop_tables)
    # Legacy record -> case event inside one Kafka transaction per batch: exactly once.
    w.add_loop(
        name="legacy",
        topics=[t for t in LEGACY_FEEDS if t != "legacy.open311.v1" or settings.open311_enabled],
        handler=pipeline.handle,
        exactly_once=True,
    )
    w.runtime.checks["registry"] = lambda: _has_divisions(view)
    app = create_app(w.runtime, title="OneGrid intake (统一受理)", routers=[router()])
    return app, settings


async def _has_divisions(view: RegistryView) -> bool:
    return bool(view.all("division"))
