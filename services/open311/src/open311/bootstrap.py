"""Composition root of the Open311 service: residents' requests over GeoReport v2 (`/open311/v2/`).

Requests are accepted over HTTP, recorded in this service's own schema and published raw to
`legacy.open311.v1`, which intake reads like any other legacy feed. The one flow back: each request's
status follows its case, from `cases.v1` (which case it went to, its own or the one intake linked it
into) and `case.lifecycle.v1` (where that case stands).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from intake.domain.crosswalk import Crosswalk
from onegrid.service import create_app
from onegrid.topics import CATALOGUE, DAY_MS, TopicSpec
from onegrid.wiring import Wiring, wire
from open311.api import ApiSettings, open311_router
from open311.settings import Settings
from open311.status import Open311StatusFollower

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class Open311Service:
    app: FastAPI
    settings: Settings
    wiring: Wiring


def bootstrap(settings: Settings | None = None) -> Open311Service:
    settings = settings or Settings()
    api = ApiSettings()
    names = {t.name for t in CATALOGUE}
    # Topics renamed by settings (tests) are created like the catalogue's own.
    own = [TopicSpec(api.topic, partitions=3)] if api.topic not in names else []
    if settings.dlq_topic not in names:
        own.append(TopicSpec(settings.dlq_topic, partitions=1, retention_ms=180 * DAY_MS, keyed=False))
    w = wire(settings, migrations=MIGRATIONS, topics=[*CATALOGUE, *own])
    follower = Open311StatusFollower(engine=w.engine)
    w.add_loop(
        name="cases",
        topics=[settings.cases_topic],
        handler=follower.apply_cases,
        dlq_topic=settings.dlq_topic,
        quarantine_topic=None,
    )
    w.add_loop(
        name="status",
        topics=[settings.lifecycle_topic],
        handler=follower.apply_lifecycle,
        dlq_topic=settings.dlq_topic,
        quarantine_topic=None,
    )
    router = open311_router(
        engine=w.engine, producer_getter=lambda: w.producer, crosswalk=Crosswalk.load(), settings=api
    )
    app = create_app(w.runtime, title="OneGrid Open311 (市民诉求 GeoReport v2)", routers=[router])
    return Open311Service(app, settings, w)
