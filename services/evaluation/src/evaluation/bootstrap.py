"""Composition root of the evaluation service: the read models, the projector loop on
case.lifecycle.v1, the API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from evaluation.api import router
from evaluation.projector import Projector
from evaluation.settings import Settings
from evaluation.store import ReadModels
from onegrid.service import create_app
from onegrid.topics import CATALOGUE, TopicSpec
from onegrid.wiring import wire

MIGRATIONS = Path(__file__).parent / "migrations"


def bootstrap(settings: Settings | None = None) -> tuple[FastAPI, Settings]:
    s = settings or Settings()
    names = {t.name for t in CATALOGUE}
    own = [TopicSpec(s.dlq_topic, partitions=1, retention_ms=180 * 24 * 3600 * 1000)]
    if s.lifecycle_topic not in names:
        own.append(TopicSpec(s.lifecycle_topic, partitions=6, retention_ms=None))
    w = wire(s, migrations=MIGRATIONS, topics=[*CATALOGUE, *own])
    models = ReadModels(w.engine, s.policy())
    w.add_loop(
        name="projector",
        topics=[s.lifecycle_topic],
        handler=Projector(models).handle,
        dlq_topic=s.dlq_topic,
        quarantine_topic=None,
    )
    app = create_app(
        w.runtime,
        title="OneGrid evaluation (考核 and BI)",
        routers=[router(models, default_min_cases=s.ranking_min_cases)],
    )
    return app, s
