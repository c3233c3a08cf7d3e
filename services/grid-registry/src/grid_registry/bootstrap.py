"""Composition root of the grid-registry service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from onegrid.registry_view import RegistryView
from onegrid.service import create_app
from onegrid.topics import GRID_REGISTRY
from onegrid.wiring import wire

from grid_registry.api import router
from grid_registry.settings import Settings


def bootstrap(settings: Settings | None = None) -> tuple[FastAPI, Settings]:
    settings = settings or Settings()
    w = wire(settings, migrations=Path(__file__).parent / "migrations")
    view = RegistryView()
    # The registry follows its own changelog: what every other service sees is what it checks.
    w.add_loop(
        name="changelog", topics=[GRID_REGISTRY], handler=view.handle, dlq_topic=None, quarantine_topic=None
    )
    app = create_app(w.runtime, title="OneGrid grid registry", routers=[router(view)])
    return app, settings
