"""Webhook leases (issue 13.9), on real PostgreSQL: a department's batch of posts in sequence takes
longer than a short lease would cover; another instance polling meanwhile must not re-claim and post
them again, and a result update only lands while the lease it was claimed with still holds."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from dispatch.domain.clock import ManualClock
from dispatch.store import Webhook
from dispatch.webhooks import Courier
from onegrid.db import make_engine, migrate

pytestmark = pytest.mark.asyncio(loop_scope="session")
MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "dispatch" / "src" / "dispatch" / "migrations"


async def test_a_slow_batch_is_not_claimed_and_posted_again_by_another_instance(database_url: str) -> None:
    url = "postgresql+asyncpg://" + database_url.split("://", 1)[1]
    schema = f"dispatch_lease_{uuid.uuid4().hex[:8]}"
    await migrate(url, schema, MIGRATIONS)
    engine = make_engine(url, schema)
    clock = ManualClock()
    hooks = {"d": Webhook("http://dept.example/hook", "s3cret")}
    async with engine.begin() as conn:
        for _ in range(10):
            await conn.execute(
                text(
                    "INSERT INTO deliveries (delivery_id, order_id, department, url, body, next_attempt_at, created_at) "
                    "VALUES (:id, :order, 'd', 'http://dept.example/hook', '\\x7b7d', :now, :now)"
                ),
                {"id": uuid.uuid4(), "order": uuid.uuid4(), "now": clock.now()},
            )
    posts: Counter[str] = Counter()
    a = Courier(engine, clock, hooks, timeout_s=5.0)  # the default lease, 10 deliveries a claim
    b = Courier(engine, clock, hooks, timeout_s=5.0)
    client_b = httpx.AsyncClient(transport=httpx.MockTransport(lambda req: record(req, None)))

    async def record(request: httpx.Request, then) -> httpx.Response:  # type: ignore[no-untyped-def]
        posts[request.headers["X-OneGrid-Delivery"]] += 1
        if then is not None:
            await then()
        return httpx.Response(200)

    async def slow_receiver_while_b_polls() -> None:
        clock.advance(5.0)  # each post of A takes its whole timeout
        await b.dispatch_once(client_b)
        for task in list(b._busy.values()):
            await task

    client_a = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda req: record(req, slow_receiver_while_b_polls))
    )
    try:
        assert await a.dispatch_once(client_a) == 10
        for task in list(a._busy.values()):
            await task
    finally:
        await client_a.aclose()
        await client_b.aclose()
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT status, attempts FROM deliveries"))).all()
    await engine.dispose()
    assert len(posts) == 10 and max(posts.values()) == 1, posts  # each delivery posted once
    assert all(r.status == "delivered" and r.attempts == 1 for r in rows), rows
    assert clock.now() - ManualClock().now() == timedelta(seconds=50)
