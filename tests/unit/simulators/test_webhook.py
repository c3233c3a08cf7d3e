"""The departments' webhook endpoint checks dispatch's signature and replay window with dispatch's
own `verify`, answers each delivery once, and refuses what is not an order for the department."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest

from dispatch.domain import signature
from simulators.webhook import webhook_app

SECRET = "shichang-webhook-secret"


def signed(
    body: bytes, *, secret: str = SECRET, ts: int | None = None, delivery: str = "d-1"
) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    return {
        signature.TIMESTAMP: str(ts),
        signature.SIGNATURE: signature.sign(secret.encode(), ts, delivery, body),
        signature.DELIVERY: delivery,
    }


@pytest.fixture
def endpoint():
    got: list[dict] = []
    app = webhook_app({"shichang": SECRET}, got.append)
    return got, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim")


ORDER = json.dumps({"order_id": "o-1", "case_id": "c-1", "department": "shichang"}).encode()


async def test_a_signed_delivery_is_accepted_once(endpoint) -> None:
    got, client = endpoint
    async with client:
        first = await client.post("/webhooks/shichang", content=ORDER, headers=signed(ORDER))
        again = await client.post("/webhooks/shichang", content=ORDER, headers=signed(ORDER))
    assert (first.status_code, first.json()["status"]) == (200, "accepted")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert got == [json.loads(ORDER)]


# Headers are made when the test runs, not at collection: a long session must not age them out.
@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (lambda: signed(ORDER, secret="another-secret-of-16"), "signature.mismatch"),
        (lambda: signed(ORDER, ts=int(time.time()) - 3600), "signature.outside_replay_window"),
        (lambda: {**signed(ORDER), signature.TIMESTAMP: "yesterday"}, "signature.timestamp_invalid"),
        (lambda: signed(ORDER + b" "), "signature.mismatch"),
    ],
)
async def test_a_bad_signature_is_401(endpoint, headers: Callable[[], dict[str, str]], reason: str) -> None:
    got, client = endpoint
    async with client:
        resp = await client.post("/webhooks/shichang", content=ORDER, headers=headers())
    assert (resp.status_code, resp.json()["error"]) == (401, reason)
    assert got == []


async def test_unknown_department_and_foreign_order_are_refused(endpoint) -> None:
    got, client = endpoint
    other = json.dumps({"order_id": "o-2", "case_id": "c-2", "department": "sifa"}).encode()
    async with client:
        unknown = await client.post("/webhooks/sifa", content=other, headers=signed(other))
        foreign = await client.post(
            "/webhooks/shichang", content=other, headers=signed(other, delivery="d-2")
        )
        garbage = await client.post("/webhooks/shichang", content=b"{", headers=signed(b"{", delivery="d-3"))
    assert unknown.status_code == 404
    assert foreign.status_code == 422 and garbage.status_code == 422
    assert got == []
