"""Composition root of the operations console: the Kafka watch (throughput, lag), the followed topics
(dead letters, quarantine, cases, lifecycle, registry), the OTLP receiver, the replay action, the
JSON API, the pages, and `/open311/v2/` forwarded to the Open311 service.

The console owns no database tables; `wire` still gives it the shared runtime (telemetry, the
producer used for replays, topic creation, health and readiness), minus the database check.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from console.api import router as api_router
from console.domain.spans import SpanStore
from console.feeds import Feeds
from console.open311_forward import Open311Forward, open311_forward_router
from console.otlp import otlp_router
from console.pages import pages_router, static_files
from console.replay import Replayer
from console.settings import Settings
from console.upstream import Upstream
from console.watch import KafkaWatch
from console.worker.api import router as worker_router
from console.worker.pages import worker_pages
from console.worker.photos import PhotoStore
from console.worker.taxonomy import Taxonomy
from onegrid.ratelimit import RateLimiter
from onegrid.service import create_app
from onegrid.topics import TopicSpec, read_by
from onegrid.wiring import Wiring, wire


def followed_topics(settings: Settings) -> list[TopicSpec]:
    """The catalogue's specs of the topics the console follows, under the names its settings give
    them (tests rename them): those the catalogue says it reads, but the legacy feeds (it only looks
    at their newest records)."""
    renamed = settings.followed_topics()
    return [spec.named(renamed.get(spec.name, spec.name)) for spec in read_by("console") if spec.feed is None]


@dataclass
class ConsoleService:
    app: FastAPI
    settings: Settings
    wiring: Wiring


def bootstrap(settings: Settings | None = None) -> ConsoleService:
    settings = settings or Settings()
    w = wire(settings, migrations=None, topics=followed_topics(settings))
    w.runtime.checks.pop("database", None)  # no tables: the console must not be unready for lack of one
    feeds = Feeds(settings)
    watch = KafkaWatch(
        settings.kafka,
        topic_pattern=settings.throughput_topic_pattern,
        group_pattern=settings.lag_group_pattern,
        interval_s=settings.sample_interval_s,
        window_s=settings.rate_window_s,
    )
    spans = SpanStore(max_spans=settings.max_spans)
    upstream = Upstream(
        audit_url=settings.audit_url,
        evaluation_url=settings.evaluation_url,
        intake_url=settings.intake_url,
        dispatch_url=settings.dispatch_url,
        timeout_s=settings.upstream_timeout_s,
    )
    replayer = Replayer(
        settings.kafka,
        quarantine_topic=settings.quarantine_topic,
        producer=lambda: w.producer,
        book=feeds.book,
    )
    w.runtime.background += [feeds.follow, watch.run]
    w.runtime.checks["feeds"] = lambda: _all_caught_up(feeds)
    w.runtime.on_stop.insert(0, feeds.stop)
    w.runtime.on_stop.append(upstream.close)
    forward = httpx.AsyncClient(timeout=settings.upstream_timeout_s)
    w.runtime.on_stop.append(forward.aclose)
    photos = PhotoStore.open(settings.photos_url)
    routers = [
        api_router(
            watch=watch,
            feeds=feeds,
            spans=spans,
            upstream=upstream,
            replayer=replayer,
            tolerance=settings.map_tolerance_deg,
            replay_limiter=RateLimiter.of(settings.replay_rate),
            ranking_min_cases=settings.ranking_min_cases,
            photos=photos,
        ),
        otlp_router(spans),
        pages_router(),
        worker_router(
            feeds=feeds,
            photos=photos,
            taxonomy=Taxonomy.load(),
            producer=lambda: w.producer,
            patrol_topic=settings.patrol_topic,
            event_source="/onegrid/console/worker",
            dispatch_url=settings.dispatch_url,
            tolerance=settings.map_tolerance_deg,
            photo_max_bytes=settings.photo_max_bytes,
            publish_timeout_s=settings.publish_timeout_s,
            http=forward,
        ),
        worker_pages(),
    ]
    if settings.open311_url:
        # Residents' apps keep /open311/v2/ on the public address; the Open311 service answers it.
        open311 = Open311Forward(settings.open311_url, timeout_s=settings.open311_timeout_s)
        w.runtime.on_stop.append(open311.close)
        routers.append(open311_forward_router(open311))
    # The pages poll every two seconds and the receiver takes the exports of every service (its own
    # too): tracing those requests would only bury the traces worth reading.
    app = create_app(
        w.runtime,
        title="OneGrid operations console (运行监控台)",
        routers=routers,
        untraced=("/api/", "/v1/", "/static/", "/cases/", "/map", "/favicon", "/worker/"),
        # /v1/: OTLP exports, batches of spans; /worker/api/: one downscaled photo at most
        body_limits={
            "/api/": 4096,
            "/v1/": 16 * 1024 * 1024,
            "/worker/api/": settings.photo_max_bytes + 4096,
        },
    )
    app.mount("/static", static_files(), name="static")
    return ConsoleService(app, settings, w)


async def _all_caught_up(feeds: Feeds) -> bool:
    return all(feeds.caught_up().values())
