"""Webhook verification as a FastAPI/Starlette dependency (extra `fastapi`).

    verifier = WebhookVerifier(secret=b"...")   # while rotating: RotatingSecret(new, previous, until)

    @app.post("/webhooks/chengguan")
    async def receive(delivery: Annotated[VerifiedOrder, Depends(verifier)]) -> dict:
        if seen(delivery.delivery_id): return {"status": "duplicate"}
        ...; return {"status": "accepted"}

A refused delivery is answered 401 `{"error": "<reason>"}`; a body that is not an order 422.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request

from onegrid_departments.orders import Order, OrderInvalid, decode_order
from onegrid_departments.signature import WINDOW_S, Secrets, WebhookRefused, verify_delivery


@dataclass(frozen=True)
class VerifiedOrder:
    delivery_id: str
    timestamp: int
    order: Order


class WebhookVerifier:
    def __init__(
        self,
        secret: Secrets,
        *,
        department: str | None = None,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._secret = secret
        self._department = department
        self._window = window_s
        self._clock = clock

    async def __call__(self, request: Request) -> VerifiedOrder:
        body = await request.body()
        try:
            d = verify_delivery(
                self._secret,
                dict(request.headers),
                body,
                now=self._clock() if self._clock else None,
                window_s=self._window,
            )
        except WebhookRefused as e:
            raise HTTPException(401, e.reason) from e
        try:
            order = decode_order(body)
        except OrderInvalid as e:
            raise HTTPException(422, f"order.invalid: {e}") from e
        if self._department and order.department != self._department:
            raise HTTPException(
                422, f"order.invalid: order for {order.department} sent to {self._department}"
            )
        return VerifiedOrder(d.delivery_id, d.timestamp, order)
