"""Composition root of the dispatch service: registry view, desk, inbox loop, outbox relay, deadline
watch and webhook courier, wired to one engine and one producer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from dispatch.api import router
from dispatch.deadlines import DeadlineWatch
from dispatch.desk import Desk
from dispatch.domain.clock import Clock, SystemClock
from dispatch.domain.lifecycle import Lifecycle, Policy
from dispatch.domain.routing import Directory
from dispatch.gauges import LoopGauges
from dispatch.handlers import Inbox
from dispatch.pg import PgRepository
from dispatch.settings import Settings
from dispatch.store import Outlets, Webhook
from dispatch.webhooks import Courier
from onegrid.kafka.admin import ensure_topics
from onegrid.kafka.table import GlobalTable
from onegrid.outbox import KafkaRelayLink, OutboxRelay
from onegrid.service import create_app
from onegrid.topics import GRID_REGISTRY, orders_topic_spec, renamed, spec_of
from onegrid.wiring import Wiring, wire
from registry_client import RegistryView

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class DispatchService:
    app: FastAPI
    settings: Settings
    wiring: Wiring
    desk: Desk
    view: RegistryView
    watch: DeadlineWatch
    relay: OutboxRelay
    courier: Courier


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> DispatchService:
    s = settings or Settings()
    clock = clock or SystemClock()
    w = wire(s, migrations=MIGRATIONS, topics=renamed(s.topics()))
    view = RegistryView()
    table = GlobalTable(s.kafka, s.registry_topic, view.handle, client_id=f"{s.client_id}-registry")
    policy = Policy(reopen_window_s=s.reopen_window_days * 86400, arbitration_s=s.arbitration_s)
    hooks = {code: Webhook(t.url, t.secret) for code, t in s.webhooks.items()}
    relay = OutboxRelay(w.engine, scope=s.db_schema, service=s.service_name, lease_s=s.outbox_lease_s)
    relay_link = KafkaRelayLink(s.kafka, client_id=s.client_id)

    def lifecycle() -> Lifecycle:
        return Lifecycle(Directory(view.records, command_suffix=s.command_centre_suffix), policy)

    async def ensure_topic(name: str) -> None:
        await ensure_topics(s.kafka, [orders_topic_spec(name)])

    desk = Desk(
        repository=PgRepository(w.engine),
        lifecycle=lifecycle,
        clock=clock,
        outlets=Outlets(lifecycle_topic=s.lifecycle_topic, orders_topic=s.orders_topic, webhooks=hooks),
        ensure_topic=ensure_topic,
        on_commit=relay.wake,
        lanes=s.desk_lanes,
    )
    watch = DeadlineWatch(w.engine, desk, poll_s=s.deadline_poll_s)
    courier = Courier(
        w.engine,
        clock,
        hooks,
        timeout_s=s.webhook_timeout_s,
        max_backoff_s=s.webhook_max_backoff_s,
        stuck_after=s.webhook_stuck_after,
    )
    inbox = Inbox(
        desk, cases_topic=s.cases_topic, feedback_topic=s.feedback_topic, settle=table.until_current
    )

    async def registry_loaded() -> None:
        # Routing reads the registry: no case is taken before the view holds the whole topic.
        await ensure_topics(s.kafka, [spec_of(GRID_REGISTRY).named(s.registry_topic)])
        await table.catch_up()

    w.runtime.on_start.append(registry_loaded)
    gauges = LoopGauges(
        w.engine, stuck_after=s.webhook_stuck_after, departments=hooks, interval_s=s.gauges_interval_s
    )
    w.runtime.background += [table.follow, lambda: relay.run(relay_link), watch.run, courier.run, gauges.run]
    w.runtime.on_stop.insert(0, _stopper(relay, watch, courier, table))
    w.add_loop(
        name="inbox",
        topics=[s.cases_topic, s.feedback_topic],
        handler=inbox.handle,
        dlq_topic=s.dlq_topic,
        quarantine_topic=None,
    )
    app = create_app(
        w.runtime,
        title="OneGrid dispatch (闭合运转)",
        routers=[router(w.engine, desk, stuck_after=s.webhook_stuck_after)],
    )
    return DispatchService(app, s, w, desk, view, watch, relay, courier)


def _stopper(*jobs: OutboxRelay | DeadlineWatch | Courier | GlobalTable):  # type: ignore[no-untyped-def]
    async def stop() -> None:
        for job in jobs:
            job.stop()

    return stop
