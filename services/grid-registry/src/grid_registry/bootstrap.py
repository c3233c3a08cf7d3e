"""Composition root of the grid-registry service.

Start-up order: migrations and topics (wire), then the seed when the registry is empty, then the
outbox relay (publishes every committed change to the changelog) and the changelog table (feeds the
registry's own RegistryView, which answers the lookups). The view is a global table read from the
start of the changelog by every instance, as in intake and dispatch: a restarted instance, or a
second one, answers from the whole registry, never from a consumer group's committed offset.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from grid_registry import api, lookups
from grid_registry.domain.seed import category_codes, seed_records
from grid_registry.registry import Registry
from grid_registry.settings import Settings
from grid_registry.store import RecordStore
from onegrid.kafka.admin import ensure_topics
from onegrid.kafka.table import GlobalTable
from onegrid.outbox import KafkaRelayLink, OutboxRelay
from onegrid.service import create_app
from onegrid.topics import GRID_REGISTRY, orders_topic_spec, renamed
from onegrid.wiring import Wiring, wire
from registry_client import RegistryView

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class GridRegistryService:
    """What bootstrap built, for the CLI and tests."""

    app: FastAPI
    settings: Settings
    wiring: Wiring
    registry: Registry
    relay: OutboxRelay
    view: RegistryView


def bootstrap(settings: Settings | None = None) -> GridRegistryService:
    settings = settings or Settings()
    w = wire(settings, migrations=MIGRATIONS, topics=renamed({GRID_REGISTRY: settings.changelog_topic}))
    store = RecordStore(w.engine, topic=settings.changelog_topic)
    relay = OutboxRelay(
        w.engine, scope=settings.db_schema, service=settings.service_name, lease_s=settings.outbox_lease_s
    )
    relay_link = KafkaRelayLink(settings.kafka, client_id=settings.client_id)

    async def ensure_order_topics(codes: Sequence[str]) -> None:
        specs = [orders_topic_spec(settings.orders_topic.format(department=code)) for code in codes]
        await ensure_topics(settings.kafka, specs)

    registry = Registry(store, categories=category_codes(), relay=relay, on_departments=ensure_order_topics)
    view = RegistryView()

    async def seed_if_empty() -> None:
        if settings.seed_on_start and await store.is_empty():
            records = await asyncio.to_thread(seed_records, settings.geometry_seed)
            log.info("seeded an empty registry: %d records", await registry.seed(records))

    async def order_topics_of_every_department() -> None:
        # Departments registered before this start (or seeded by an older version): their topics too.
        await ensure_order_topics([r["code"] for r in await store.records("department")])

    w.runtime.on_start.append(seed_if_empty)
    w.runtime.on_start.append(order_topics_of_every_department)
    # The registry follows its own changelog: what every other service sees is what it answers.
    table = GlobalTable(
        settings.kafka, settings.changelog_topic, view.handle, client_id=f"{settings.client_id}-view"
    )

    async def changelog_caught_up() -> bool:
        return table.caught_up.is_set()

    async def catch_up_changelog() -> None:
        await table.catch_up()  # how many records it applied is of no use to the start-up

    async def stop_table() -> None:
        table.stop()

    w.runtime.on_start.append(catch_up_changelog)
    w.runtime.background += [lambda: relay.run(relay_link), table.follow]
    w.runtime.on_stop.insert(0, stop_table)
    w.runtime.checks["changelog"] = changelog_caught_up
    app = create_app(
        w.runtime,
        title="OneGrid grid registry",
        routers=[api.router(registry), lookups.router(view, store)],
        # outlines of districts and whole imports are large; everything else keeps the default
        body_limits={"/v1/records/": 4 * 1024 * 1024, "/v1/import/": 16 * 1024 * 1024},
    )
    api.install_error_handler(app)
    return GridRegistryService(app, settings, w, registry, relay, view)
