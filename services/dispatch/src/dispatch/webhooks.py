"""Signed webhook delivery of orders to departments without a Kafka integration.

Contract: at least once per order (a receiver dedupes on X-OneGrid-Delivery); signed with HMAC over
timestamp, delivery id and body (domain/signature.py) with the department's current secret at the
moment of the post (webhook_secrets.py: rotated through the API, else the configured one); a failure is retried with capped exponential backoff,
without end, and reported as stuck after `stuck_after` attempts. Each department is served by its own
task and claims at most `per_department` deliveries at a time, so one dead endpoint stalls no other.
Deliveries are claimed with a lease (no transaction held across HTTP); a crashed instance's leases
expire and another instance retries them. A claim's lease covers its whole batch (up to
`per_department` posts in sequence, each bounded by twice `timeout_s`: connect and read), so no other
instance re-claims a delivery still waiting its turn; the lease value a row was claimed with is its
token: a post happens, and its result is recorded, only while the row still holds that lease.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
from opentelemetry.trace import SpanKind
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch import webhook_secrets
from dispatch.domain import signature
from dispatch.domain.clock import Clock
from dispatch.store import Webhook
from onegrid import telemetry
from onegrid.periodic import Periodic

log = logging.getLogger(__name__)

_CLAIM = text(
    """
    UPDATE deliveries SET lease_until = :lease, attempts = attempts + 1
    WHERE delivery_id IN (
        SELECT delivery_id FROM (
            SELECT delivery_id, row_number() OVER (PARTITION BY department ORDER BY next_attempt_at) AS rn
            FROM deliveries
            WHERE status = 'pending' AND next_attempt_at <= :now
              AND (lease_until IS NULL OR lease_until < :now) AND NOT (department = ANY(:busy))
        ) s WHERE rn <= :per
    ) AND status = 'pending' AND (lease_until IS NULL OR lease_until < :now)
    RETURNING delivery_id::text, department, url, body, attempts, traceparent
    """
)


class Courier:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        webhooks: Mapping[str, Webhook],
        *,
        timeout_s: float = 5.0,
        lease_s: float = 30.0,
        base_backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
        per_department: int = 10,
        poll_s: float = 0.2,
        stuck_after: int = 5,
    ) -> None:
        self._tracer = telemetry.tracer("dispatch.webhooks")
        self._engine = engine
        self._clock = clock
        self._webhooks = webhooks
        self._timeout = timeout_s
        # Never shorter than the batch it covers (see the module's docstring).
        self._lease = max(lease_s, per_department * 2 * timeout_s + 10.0)
        self._base = base_backoff_s
        self._max = max_backoff_s
        self._per = per_department
        self.stuck_after = stuck_after
        self._busy: dict[str, asyncio.Task[None]] = {}
        self._job = Periodic("webhook courier", poll_s)
        self.sent = 0
        self.failed = 0

    def stop(self) -> None:
        self._job.stop()

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            try:
                await self._job.run(lambda: self.dispatch_once(client))
            finally:
                for t in self._busy.values():
                    t.cancel()
                await asyncio.gather(*self._busy.values(), return_exceptions=True)

    async def dispatch_once(self, client: httpx.AsyncClient) -> int:
        """Claim due deliveries for every department not already being served; start their tasks."""
        self._busy = {d: t for d, t in self._busy.items() if not t.done()}
        now = self._clock.now()
        lease = now + timedelta(seconds=self._lease)
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    _CLAIM,
                    {
                        "now": now,
                        "lease": lease,
                        "busy": list(self._busy),
                        "per": self._per,
                    },
                )
            ).all()
        by_department: dict[str, list[Any]] = {}
        for r in rows:
            by_department.setdefault(r.department, []).append(r)
        for dept, batch in by_department.items():
            self._busy[dept] = asyncio.create_task(self._serve(client, batch, lease))
        return len(rows)

    async def _holds(self, delivery_id: str, lease: datetime) -> bool:
        """Whether the row is still ours: pending, under the lease it was claimed with."""
        async with self._engine.connect() as conn:
            held = await conn.scalar(
                text(
                    "SELECT count(*) FROM deliveries WHERE delivery_id = :id AND status = 'pending' "
                    "AND lease_until = :lease"
                ),
                {"id": delivery_id, "lease": lease},
            )
        return bool(held)

    async def _secret_of(self, department: str) -> bytes | None:
        hook = self._webhooks.get(department)
        if hook is None:
            return None
        async with self._engine.connect() as conn:
            return (await webhook_secrets.current(conn, department, hook.secret)).encode()

    async def _serve(self, client: httpx.AsyncClient, batch: list[Any], lease: datetime) -> None:
        for r in batch:
            if not await self._holds(r.delivery_id, lease):
                log.warning("delivery %s: lease lost before its post; another instance has it", r.delivery_id)
                continue
            parent = telemetry.extract([("traceparent", r.traceparent.encode())] if r.traceparent else [])
            with self._tracer.start_as_current_span(
                f"webhook {r.department}",
                context=parent,
                kind=SpanKind.CLIENT,
                attributes={"dispatch.delivery_id": r.delivery_id, "dispatch.attempt": r.attempts},
            ):
                secret = await self._secret_of(r.department)
                error = await self._post(client, secret, r.url, bytes(r.body), r.delivery_id)
            now = self._clock.now()
            async with self._engine.begin() as conn:
                if error is None:
                    self.sent += 1
                    done = await conn.execute(
                        text(
                            "UPDATE deliveries SET status = 'delivered', delivered_at = :now, lease_until = NULL, "
                            "last_error = NULL WHERE delivery_id = :id AND lease_until = :lease"
                        ),
                        {"now": now, "id": r.delivery_id, "lease": lease},
                    )
                else:
                    self.failed += 1
                    delay = min(self._max, self._base * 2 ** (r.attempts - 1))
                    done = await conn.execute(
                        text(
                            "UPDATE deliveries SET next_attempt_at = :next, lease_until = NULL, last_error = :err "
                            "WHERE delivery_id = :id AND lease_until = :lease"
                        ),
                        {
                            "next": now + timedelta(seconds=delay),
                            "err": error[:500],
                            "id": r.delivery_id,
                            "lease": lease,
                        },
                    )
                if done.rowcount == 0:
                    # Another instance re-claimed it (our lease ran out): its result is the one kept.
                    log.warning("delivery %s: lease lost; result of this attempt not recorded", r.delivery_id)

    async def _post(
        self, client: httpx.AsyncClient, secret: bytes | None, url: str, body: bytes, delivery_id: str
    ) -> str | None:
        if secret is None:
            return "webhook.not_configured"
        ts = int(time.time())
        headers: dict[str, str] = {
            "content-type": "application/json",
            signature.TIMESTAMP: str(ts),
            signature.SIGNATURE: signature.sign(secret, ts, delivery_id, body),
            signature.DELIVERY: delivery_id,
        }
        headers.update({k: v.decode() for k, v in telemetry.inject([])})  # the department joins the trace
        try:
            resp = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as e:
            return f"http.{type(e).__name__}"
        return None if 200 <= resp.status_code < 300 else f"http.status_{resp.status_code}"


async def stuck(engine: AsyncEngine, *, min_attempts: int) -> list[dict[str, Any]]:
    """Pending deliveries that failed at least `min_attempts` times, per department, oldest first."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT department, count(*) AS pending, min(created_at) AS oldest, max(attempts) AS max_attempts, "
                    "(array_agg(last_error ORDER BY created_at))[1] AS last_error FROM deliveries "
                    "WHERE status = 'pending' AND attempts >= :n GROUP BY department ORDER BY oldest"
                ),
                {"n": min_attempts},
            )
        ).mappings()
        return [dict(r) for r in rows]
