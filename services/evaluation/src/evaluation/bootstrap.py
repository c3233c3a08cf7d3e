"""Composition root of the evaluation service: the read models, the projector loop on
case.lifecycle.v1, the API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from evaluation.api import router
from evaluation.dimensions import Dimensions
from evaluation.lake import LakeDimensions, LakeFacts, LakeSink, open_store
from evaluation.projector import Projector
from evaluation.settings import Settings
from evaluation.store import ReadModels
from onegrid.service import create_app
from onegrid.topics import renamed
from onegrid.wiring import Wiring, wire

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class EvaluationService:
    app: FastAPI
    settings: Settings
    wiring: Wiring


def bootstrap(settings: Settings | None = None) -> EvaluationService:
    s = settings or Settings()
    w = wire(s, migrations=MIGRATIONS, topics=renamed(s.topics()))
    models = ReadModels(w.engine, s.policy())
    dimensions = Dimensions(w.engine)
    registry_handler = dimensions.handle
    after = None
    if s.lake_url:
        store = open_store(s.lake_url)
        after = LakeFacts(store, models, s.lifecycle_topic).refresh
        registry_handler = LakeDimensions(store, dimensions).handle
        w.add_loop(
            name="lake",
            topics=[s.lifecycle_topic],
            handler=LakeSink(store).handle,
            dlq_topic=None,  # what is not a lifecycle event the projector dead-letters
            quarantine_topic=None,
        )
    w.add_loop(
        name="projector",
        topics=[s.lifecycle_topic],
        handler=Projector(models, after=after).handle,
        dlq_topic=s.dlq_topic,
        quarantine_topic=None,
    )
    w.add_loop(
        name="dimensions",
        topics=[s.registry_topic],
        handler=registry_handler,
        dlq_topic=s.dlq_topic,
        quarantine_topic=None,
    )
    app = create_app(
        w.runtime,
        title="OneGrid evaluation (考核 and BI)",
        routers=[
            router(
                models, dimensions, lifecycle_topic=s.lifecycle_topic, default_min_cases=s.ranking_min_cases
            )
        ],
    )
    return EvaluationService(app, s, w)
