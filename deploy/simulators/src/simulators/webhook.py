"""The departments' webhook endpoint: receives dispatch's signed order deliveries.

`POST /webhooks/{department}` with the order JSON as body and dispatch's headers
(X-OneGrid-Timestamp, X-OneGrid-Signature `v2=<hex>`, X-OneGrid-Delivery). The signature (over the
delivery id too) and the
replay window are checked with dispatch's own `dispatch.domain.signature.verify` (the receiver's
half it ships for departments). Answers: 200 accepted (or duplicate: a retry repeats the delivery
id), 401 naming the signature problem, 404 for a department this endpoint does not serve, 422 for a
body that is not an order for that department. The department's answers go back through dispatch's
REST API (POST /v1/feedback), see departments.py.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from dispatch.domain import signature

Json = dict[str, Any]


def webhook_app(
    secrets: dict[str, str],
    on_order: Callable[[Json], None],
    *,
    window_s: float = 300.0,
    clock: Callable[[], float] = time.time,
    remember: int = 10_000,
) -> FastAPI:
    """`secrets`: department code -> the shared secret dispatch signs its deliveries with."""
    app = FastAPI(title="OneGrid simulated departments (webhooks)")
    seen: OrderedDict[str, None] = OrderedDict()

    @app.get("/healthz")
    async def healthz() -> Json:
        return {"status": "ok", "departments": sorted(secrets)}

    @app.post("/webhooks/{department}")
    async def delivery(department: str, request: Request) -> JSONResponse:
        secret = secrets.get(department)
        if secret is None:
            return JSONResponse({"error": "department.not_served", "detail": department}, status_code=404)
        body = await request.body()
        delivery_id = request.headers.get(signature.DELIVERY, "")
        refusal = signature.verify(
            [secret.encode()],
            request.headers.get(signature.TIMESTAMP, ""),
            request.headers.get(signature.SIGNATURE, ""),
            delivery_id,
            body,
            now=clock(),
            window_s=window_s,
        )
        if refusal is not None:
            return JSONResponse({"error": refusal}, status_code=401)
        if delivery_id in seen:
            return JSONResponse({"status": "duplicate"})
        try:
            order = json.loads(body)
            if order["department"] != department or not order["order_id"] or not order["case_id"]:
                raise ValueError(f"order for {order['department']!r} delivered to {department!r}")
        except (ValueError, KeyError, TypeError) as e:
            return JSONResponse({"error": "order.invalid", "detail": str(e)[:200]}, status_code=422)
        seen[delivery_id] = None
        while len(seen) > remember:
            seen.popitem(last=False)
        on_order(order)
        return JSONResponse({"status": "accepted"})

    return app
