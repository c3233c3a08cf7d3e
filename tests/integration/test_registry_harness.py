"""Test harness (no tests here): a grid-registry service on the session's broker and database, with its own schema, changelog topic
and consumer group, driven in-process through its ASGI app (start-up and shutdown included)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy import text
from support.auth import ADMIN

from grid_registry.bootstrap import GridRegistryService, bootstrap
from grid_registry.settings import Settings
from onegrid.settings import KafkaSettings


@dataclass
class Running:
    service: GridRegistryService
    client: httpx.AsyncClient
    topic: str
    schema: str

    async def caught_up(self, timeout_s: float = 60.0) -> None:
        """Wait until the outbox is empty and the view has applied everything the relay published."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        store = self.service.registry.store
        while loop.time() < deadline:
            async with store.engine.connect() as conn:
                pending = await conn.scalar(text("SELECT count(*) FROM outbox"))
            if pending == 0 and self.view_matches_relay():
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the registry view did not catch up with the outbox")

    def view_matches_relay(self) -> bool:
        return self.service.view.version >= self.service.relay.published

    async def wait_for(self, kind: str, code: str, revision: int | None, timeout_s: float = 30.0) -> None:
        """Wait until the view holds `kind:code` at `revision` (None: until it is gone)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            record = self.service.view.get(kind, code)
            if (record is None and revision is None) or (
                record is not None and record["revision"] == revision
            ):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"view never showed {kind}:{code} at revision {revision}")


@asynccontextmanager
async def running_registry(
    database_url: str,
    kafka: KafkaSettings,
    topic: str,
    *,
    seed: bool = False,
    uid: str | None = None,
    instance_id: str = "0",
    orders_topic: str | None = None,
) -> AsyncIterator[Running]:
    """`uid` names the schema and the service (hence its groups): pass the same one to restart the
    same service, or to run a second instance of it beside the first."""
    uid = uid or uuid.uuid4().hex[:8]
    schema = f"registry_{uid}"
    settings = Settings(
        **{"DATABASE_URL": database_url},  # type: ignore[arg-type]
        db_schema=schema,
        kafka=kafka,
        service_name=f"grid-registry-{uid}",
        changelog_topic=topic,
        seed_on_start=seed,
        instance_id=instance_id,
        commit_interval_s=0.2,
        http_port=0,
        # Departments' order topics of this test alone (the real names are shared by every test).
        orders_topic=orders_topic or f"t.{uid}.dispatch.orders.{{department}}.v1",
    )
    service = bootstrap(settings)
    app = service.app
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://registry", headers=ADMIN
        ) as client:
            yield Running(service, client, topic, schema)
