"""Composition root of the audit service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from onegrid.service import create_app
from onegrid.topics import CATALOGUE
from onegrid.wiring import wire

from audit.api import router
from audit.settings import Settings
from audit.wiretap import WireTap


def bootstrap(settings: Settings | None = None) -> tuple[FastAPI, Settings]:
    settings = settings or Settings()
    w = wire(settings, migrations=Path(__file__).parent / "migrations")
    tap = WireTap(w.engine)
    # The tap reads every topic of the catalogue, dead letters and quarantine included.
    topics = [t.name for t in CATALOGUE]
    w.add_loop(name="wiretap", topics=topics, handler=tap.handle, dlq_topic=None, quarantine_topic=None)
    app = create_app(w.runtime, title="OneGrid audit", routers=[router(w.engine)])
    return app, settings
