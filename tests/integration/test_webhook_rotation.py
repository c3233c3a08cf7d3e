"""Per-department webhook secrets rotate with overlap (issue 15 item 9), and the delivery id is under
the signature (issue 15, Low): on the real PostgreSQL, an administrator rotates a department's secret
through dispatch's API; every delivery from then on is signed with the new secret over timestamp,
delivery id and body; the department's verifier (onegrid_departments) accepts the new and, until the
given expiry, the previous secret, and refuses a captured delivery under a new delivery id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from support.auth import token

import onegrid_departments as kit
from dispatch.api import router as dispatch_router
from dispatch.desk import Desk
from dispatch.domain.clock import ManualClock
from dispatch.store import Outlets, Webhook
from dispatch.webhooks import Courier
from onegrid.auth import AuthSettings, install
from onegrid.db import make_engine, migrate

pytestmark = pytest.mark.asyncio(loop_scope="session")
MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "dispatch" / "src" / "dispatch" / "migrations"
CONFIGURED = "the-configured-secret-of-the-dept"
URL = "http://dept.example/hook"


async def test_a_rotated_secret_signs_deliveries_and_the_previous_verifies_until_it_expires(
    database_url: str,
) -> None:
    url = "postgresql+asyncpg://" + database_url.split("://", 1)[1]
    schema = f"dispatch_rotate_{uuid.uuid4().hex[:8]}"
    await migrate(url, schema, MIGRATIONS)
    engine = make_engine(url, schema)
    clock = ManualClock(datetime.now(UTC))  # the courier signs with the wall clock's time
    hooks = {"d": Webhook(URL, CONFIGURED)}

    async def no_topics(_: str) -> None:
        return None

    desk = Desk(
        engine=engine,
        lifecycle=lambda: None,  # type: ignore[arg-type,return-value]  # no case changes here
        clock=clock,
        outlets=Outlets(lifecycle_topic="t.lifecycle", webhooks=hooks),
        ensure_topic=no_topics,
    )
    app = FastAPI()
    app.include_router(dispatch_router(engine, desk))
    install(app, AuthSettings(), environment="test")

    async def rotate(role: str, department: str = "d") -> httpx.Response:
        bearer = token(role, subject=f"staff:{role}", scope=["321000"] if role == "city_operator" else [])
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app),
            base_url="http://svc",
            headers={"Authorization": f"Bearer {bearer}"},
        ) as c:
            return await c.post(f"/v1/departments/{department}/webhook-secret", params={"overlap_s": 3600})

    received: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200)

    async def deliver_one() -> httpx.Request:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO deliveries (delivery_id, order_id, department, url, body, next_attempt_at, "
                    "created_at) VALUES (:id, :order, 'd', :url, '\\x7b7d', :now, :now)"
                ),
                {"id": uuid.uuid4(), "order": uuid.uuid4(), "url": URL, "now": clock.now()},
            )
        courier = Courier(engine, clock, hooks)
        async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
            await courier.dispatch_once(client)
            for task in list(courier._busy.values()):
                await task
        return received[-1]

    def headers(r: httpx.Request) -> dict[str, str]:
        return dict(r.headers)

    try:
        before = await deliver_one()
        assert kit.verify_delivery(CONFIGURED.encode(), headers(before), before.content).delivery_id

        assert (await rotate("city_operator")).status_code == 403
        assert (await rotate("admin", department="no-such-dept")).status_code == 404
        answer = await rotate("admin")
        assert answer.status_code == 200, answer.text
        fresh = answer.json()["secret"].encode()
        until = datetime.fromisoformat(answer.json()["previous_valid_until"]).timestamp()
        assert fresh != CONFIGURED.encode() and len(fresh) >= 32
        assert until == clock.now().timestamp() + 3600

        after = await deliver_one()
        assert kit.verify_delivery(fresh, headers(after), after.content).delivery_id
        with pytest.raises(kit.WebhookRefused, match=r"signature\.mismatch"):
            kit.verify_delivery(CONFIGURED.encode(), headers(after), after.content)

        # The department, while installing the new secret, accepts both until the previous expires.
        rotating = kit.RotatingSecret(current=fresh, previous=CONFIGURED.encode(), previous_until=until)
        for delivery in (before, after):
            stamp = int(delivery.headers[kit.TIMESTAMP])
            assert kit.verify_delivery(rotating, headers(delivery), delivery.content, now=stamp).delivery_id

        # A captured delivery replayed under a new delivery id, within the window: refused.
        replay = {**headers(after), kit.DELIVERY.lower(): str(uuid.uuid4())}
        with pytest.raises(kit.WebhookRefused, match=r"signature\.mismatch"):
            kit.verify_delivery(rotating, replay, after.content)

        # A second rotation: the first rotated secret becomes the previous one.
        again = (await rotate("admin")).json()["secret"].encode()
        third = await deliver_one()
        assert kit.verify_delivery(again, headers(third), third.content).delivery_id
        async with engine.connect() as conn:
            previous = await conn.scalar(
                text("SELECT previous_secret FROM webhook_secrets WHERE department = 'd'")
            )
        assert previous == fresh.decode()
    finally:
        await engine.dispose()
