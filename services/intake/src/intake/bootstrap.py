"""Composition root of the intake service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from onegrid.service import create_app
from onegrid.topics import LEGACY_EMERGENCY_CAP, LEGACY_ENV_HJ212, LEGACY_PARTY, LEGACY_SAFETY
from onegrid.wiring import wire

from intake.api import router
from intake.pipeline import IntakePipeline
from intake.settings import Settings


def bootstrap(settings: Settings | None = None) -> tuple[FastAPI, Settings]:
    settings = settings or Settings()
    w = wire(settings, migrations=Path(__file__).parent / "migrations")
    pipeline = IntakePipeline(settings=settings)
    # Legacy record -> case event inside one Kafka transaction per batch: exactly once.
    w.add_loop(
        name="legacy",
        topics=[LEGACY_ENV_HJ212, LEGACY_EMERGENCY_CAP, LEGACY_SAFETY, LEGACY_PARTY],
        handler=pipeline.handle,
        exactly_once=True,
    )
    app = create_app(w.runtime, title="OneGrid intake (统一受理)", routers=[router()])
    return app, settings
