"""The client kit without a network: signatures, orders, the Starlette dependency, feedback retries."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

import onegrid_departments as kit
from onegrid_departments.feedback import feedback_for
from onegrid_departments.starlette import WebhookVerifier

SECRET = b"a-shared-secret-of-thirty-two-bytes!"
NOW = 1_772_331_600


def order(**over: Any) -> dict[str, Any]:
    o: dict[str, Any] = {
        "order_id": str(uuid.uuid4()),
        "case_id": str(uuid.uuid4()),
        "department": "chengguan",
        "hop": 1,
        "kind": "assign",
        "issued_at": "2026-03-01T02:20:00Z",
        "deadlines": {"acknowledge_by": "2026-03-01T02:50:00Z", "resolve_by": "2026-03-02T02:20:00Z"},
        "case": {"title": "占道经营", "category": {"code": "city.street_vending"}},
        "instructions": None,
        "routing": {"rule_code": "r", "rule_version": "1", "previous_department": None},
    }
    o.update(over)
    return o


def signed(body: bytes, ts: int = NOW, secret: bytes = SECRET, delivery: str = "d-1") -> dict[str, str]:
    return {
        kit.TIMESTAMP: str(ts),
        kit.SIGNATURE: kit.sign(secret, ts, delivery, body),
        kit.DELIVERY: delivery,
    }


# -- verify ---------------------------------------------------------------------------------------


def test_verify_delivery_accepts_a_fresh_authentic_delivery_with_any_header_case() -> None:
    body = json.dumps(order(), ensure_ascii=False).encode()
    headers = {k.lower(): v for k, v in signed(body).items()}
    d = kit.verify_delivery(SECRET, headers, body, now=NOW + 299)
    assert (d.delivery_id, d.timestamp, d.body) == ("d-1", NOW, body)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h, b: (h, b + b" "), "signature.mismatch"),  # one byte changed in transit
        (lambda h, b: ({**h, kit.TIMESTAMP: str(NOW + 1)}, b), "signature.mismatch"),  # replayed, restamped
        (lambda h, b: ({**h, kit.DELIVERY: "d-2"}, b), "signature.mismatch"),  # replayed under a new id
        (lambda h, b: ({k: v for k, v in h.items() if k != kit.DELIVERY}, b), "delivery.missing"),
        (lambda h, b: ({**h, kit.TIMESTAMP: str(NOW - 400)}, b), "signature.outside_replay_window"),
        (lambda h, b: ({**h, kit.TIMESTAMP: "soon"}, b), "signature.timestamp_invalid"),
        (lambda h, b: ({k: v for k, v in h.items() if k != kit.SIGNATURE}, b), "signature.missing"),
        (lambda h, b: ({k: v for k, v in h.items() if k != kit.DELIVERY}, b), "delivery.missing"),
    ],
)
def test_verify_delivery_refuses_with_the_guides_reason(mutate: Any, reason: str) -> None:
    body = json.dumps(order()).encode()
    headers, sent = mutate(signed(body), body)
    with pytest.raises(kit.WebhookRefused) as e:
        kit.verify_delivery(SECRET, headers, sent, now=NOW)
    assert e.value.reason == reason


def test_while_a_secret_is_rotated_both_verify_until_the_previous_expires() -> None:
    new, body = b"the-new-secret-of-thirty-two-bytes", b"{}"
    rotating = kit.RotatingSecret(current=new, previous=SECRET, previous_until=NOW + 3600)
    for secret in (SECRET, new):
        assert kit.verify_delivery(rotating, signed(body, secret=secret), body, now=NOW).delivery_id == "d-1"
    with pytest.raises(kit.WebhookRefused, match=r"signature\.mismatch"):
        kit.verify_delivery(rotating, signed(body, ts=NOW + 3600), body, now=NOW + 3600)
    assert kit.verify_delivery([new, SECRET], signed(body), body, now=NOW).delivery_id == "d-1"


# -- orders ---------------------------------------------------------------------------------------


def test_decode_order_keeps_the_case_and_parses_deadlines() -> None:
    o = kit.decode_order(json.dumps(order(future_field=1), ensure_ascii=False).encode())
    assert o.department == "chengguan" and o.kind == "assign" and o.title == "占道经营"
    assert o.category_code == "city.street_vending"
    assert o.acknowledge_by is not None and o.acknowledge_by.utcoffset() is not None
    assert o.raw["future_field"] == 1  # unknown fields are kept, not refused


@pytest.mark.parametrize(
    "bad",
    [
        b"not json",
        b"[]",
        json.dumps(order(order_id="42")).encode(),
        json.dumps(order(kind="pizza")).encode(),
        json.dumps(order(hop=0)).encode(),
        json.dumps(order(issued_at="2026-03-01 02:20")).encode(),
        json.dumps(order(department="Not A Code")).encode(),
    ],
)
def test_decode_order_refuses_what_is_not_an_order(bad: bytes) -> None:
    with pytest.raises(kit.OrderInvalid):
        kit.decode_order(bad)


# -- the Starlette dependency ---------------------------------------------------------------------


def app(verifier: WebhookVerifier) -> Starlette:
    async def receive(request: Request) -> JSONResponse:
        delivery = await verifier(request)
        return JSONResponse({"status": "accepted", "order_id": delivery.order.order_id})

    return Starlette(routes=[Route("/hook", receive, methods=["POST"])])


def test_starlette_dependency_answers_as_the_guide_says() -> None:
    client = TestClient(app(WebhookVerifier(SECRET, department="chengguan", clock=lambda: NOW)))
    o = order()
    body = json.dumps(o).encode()
    ok = client.post("/hook", content=body, headers=signed(body))
    assert ok.status_code == 200 and ok.json()["order_id"] == o["order_id"]
    bad = client.post("/hook", content=body, headers=signed(body, secret=b"other"))
    assert bad.status_code == 401 and "signature.mismatch" in bad.text
    wrong_dept = json.dumps(order(department="shichang")).encode()
    assert client.post("/hook", content=wrong_dept, headers=signed(wrong_dept)).status_code == 422


# -- feedback -------------------------------------------------------------------------------------


class Dispatch:
    """A stand-in for POST /v1/feedback: fails `failures` times, then applies each feedback_id once."""

    def __init__(self, failures: list[int | type[Exception]]) -> None:
        self.failures = failures
        self.bodies: list[dict[str, Any]] = []
        self.applied: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        assert request.headers["X-API-Key"] == "k"
        if self.failures:
            f = self.failures.pop(0)
            if isinstance(f, int):
                return httpx.Response(f, json={"detail": "try later"})
            raise f("connection reset")
        if body["feedback_id"] in self.applied:
            return httpx.Response(200, json={"outcome": "duplicate:applied"})
        self.applied.add(body["feedback_id"])
        return httpx.Response(200, json={"outcome": "applied"})


async def no_sleep(_: float) -> None:
    return None


async def test_feedback_retries_with_one_idempotency_key() -> None:
    server = Dispatch([503, httpx.ConnectError, 429])
    o = kit.decode_order(json.dumps(order()).encode())
    async with kit.FeedbackClient(
        "http://dispatch", api_key="k", transport=httpx.MockTransport(server), sleep=no_sleep
    ) as client:
        fb = feedback_for(o, "acknowledge")
        assert await client.send(fb) == "applied"
        assert await client.send(fb) == "duplicate:applied"  # the caller's own retry later: still once
    assert len(server.bodies) == 5
    assert {b["feedback_id"] for b in server.bodies} == {fb.feedback_id}
    assert server.applied == {fb.feedback_id}


async def test_feedback_refused_is_not_retried_and_unavailable_gives_up() -> None:
    o = kit.decode_order(json.dumps(order()).encode())
    refusing = Dispatch([409])
    async with kit.FeedbackClient(
        "http://d", api_key="k", transport=httpx.MockTransport(refusing), sleep=no_sleep
    ) as client:
        with pytest.raises(kit.FeedbackRefused) as e:
            await client.progress(o, "路上")
    assert e.value.status == 409 and len(refusing.bodies) == 1
    down = Dispatch([500] * 10)
    async with kit.FeedbackClient(
        "http://d", api_key="k", attempts=3, transport=httpx.MockTransport(down), sleep=no_sleep
    ) as client:
        with pytest.raises(kit.FeedbackUnavailable):
            await client.acknowledge(o)
    assert len(down.bodies) == 3


def test_feedback_bodies_follow_the_schema_rules() -> None:
    o = kit.decode_order(json.dumps(order()).encode())
    with pytest.raises(ValueError):
        feedback_for(o, "resolve")  # no evidence
    with pytest.raises(ValueError):
        feedback_for(o, "return", return_reason={"code": "return.because", "detail": "x"})
    r = feedback_for(o, "return", return_reason={"code": "return.not_our_duty", "detail": "不归我们"}).body()
    assert r["return_reason"] == {
        "code": "return.not_our_duty",
        "suggested_department": None,
        "detail": "不归我们",
    }
    assert r["at"].endswith("Z") and r["evidence"] == [] and r["note"] is None
