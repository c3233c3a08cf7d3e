"""Feedback over the API (`POST /v1/feedback` of dispatch), with retries that can never apply an
answer twice: each answer gets its `feedback_id` (the idempotency key) once, before the first
attempt, and every retry repeats it, so dispatch applies it at most once and answers a repeat with
`duplicate:<first outcome>`.

Retried: connection errors, timeouts, 429 and 5xx (capped exponential backoff with jitter).
Not retried: 401/403 (credentials), 404 (case unknown or not yours), 409 (refused by the case's
state machine, e.g. `transition.case_closed`), 422 (the body is invalid): `FeedbackRefused`.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from onegrid_departments.orders import Order

RETURN_CODES = (
    "return.not_our_duty",
    "return.outside_jurisdiction",
    "return.wrong_location",
    "return.insufficient_information",
    "return.duplicate",
    "return.needs_enforcement",
    "return.other",
)
RETRIED_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class FeedbackRefused(Exception):
    """Dispatch answered and will not take this feedback; retrying the same body cannot help."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class FeedbackUnavailable(Exception):
    """Every attempt failed on the way (network, 5xx); the same feedback may be sent again later."""


@dataclass(frozen=True)
class Feedback:
    """One answer to an order (`feedback.v1.json`); `feedback_id` is its idempotency key."""

    order_id: str
    case_id: str
    department: str
    kind: str
    actor: dict[str, str]
    note: str | None = None
    evidence: Sequence[dict[str, Any]] = ()
    return_reason: dict[str, Any] | None = None
    feedback_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def body(self) -> dict[str, Any]:
        return {
            "feedback_id": self.feedback_id,
            "order_id": self.order_id,
            "case_id": self.case_id,
            "department": self.department,
            "kind": self.kind,
            "at": self.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "actor": self.actor,
            "note": self.note,
            "evidence": list(self.evidence),
            "return_reason": self.return_reason,
        }

    def encode(self) -> bytes:
        return json.dumps(self.body(), ensure_ascii=False).encode()


def feedback_for(
    order: Order,
    kind: str,
    actor: dict[str, str] | None = None,
    *,
    note: str | None = None,
    evidence: Sequence[dict[str, Any]] = (),
    return_reason: dict[str, Any] | None = None,
) -> Feedback:
    """The answer of `kind` to `order`, in the department's name unless a staff `actor` is given."""
    if kind not in ("acknowledge", "progress", "resolve", "return"):
        raise ValueError(f"feedback kind {kind!r}")
    if kind == "resolve" and not evidence:
        raise ValueError("a resolve carries at least one evidence reference")
    if kind == "return":
        if not return_reason or return_reason.get("code") not in RETURN_CODES:
            raise ValueError(f"a return carries return_reason.code, one of {', '.join(RETURN_CODES)}")
        return_reason = {"suggested_department": None, **return_reason}
    elif return_reason is not None:
        raise ValueError("return_reason belongs to a return only")
    return Feedback(
        order_id=order.order_id,
        case_id=order.case_id,
        department=order.department,
        kind=kind,
        actor=actor or {"kind": "department", "id": order.department, "display": ""},
        note=note,
        evidence=evidence,
        return_reason=return_reason,
    )


Sleep = Callable[[float], Awaitable[None]]


class FeedbackClient:
    """`async with FeedbackClient(url, api_key=...) as fb: await fb.acknowledge(order)`."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        attempts: int = 6,
        base_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        headers = {"content-type": "application/json"}
        if api_key:
            headers["X-API-Key"] = api_key
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )
        self._attempts = attempts
        self._base = base_backoff_s
        self._max = max_backoff_s
        self._sleep = sleep

    async def __aenter__(self) -> FeedbackClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, fb: Feedback) -> str:
        """Send `fb` until dispatch answers; returns its outcome (`applied` or `duplicate:...`)."""
        body, last = fb.encode(), "no attempt"
        for attempt in range(1, self._attempts + 1):
            try:
                resp = await self._http.post("/v1/feedback", content=body)
            except httpx.HTTPError as e:
                last = f"{type(e).__name__}: {e}"
            else:
                if 200 <= resp.status_code < 300:
                    return str(resp.json().get("outcome", "applied"))
                if resp.status_code not in RETRIED_STATUS:
                    raise FeedbackRefused(resp.status_code, _detail(resp))
                last = f"{resp.status_code}: {_detail(resp)}"
            if attempt < self._attempts:
                delay = min(self._max, self._base * 2 ** (attempt - 1))
                await self._sleep(delay * random.uniform(0.5, 1.0))
        raise FeedbackUnavailable(
            f"feedback {fb.feedback_id} not delivered after {self._attempts} attempts: {last}"
        )

    async def acknowledge(self, order: Order, **kw: Any) -> str:
        return await self.send(feedback_for(order, "acknowledge", **kw))

    async def progress(self, order: Order, note: str, **kw: Any) -> str:
        return await self.send(feedback_for(order, "progress", note=note, **kw))

    async def resolve(self, order: Order, evidence: Sequence[dict[str, Any]], **kw: Any) -> str:
        return await self.send(feedback_for(order, "resolve", evidence=evidence, **kw))

    async def return_(self, order: Order, code: str, detail: str, **kw: Any) -> str:
        suggested = kw.pop("suggested_department", None)
        reason = {"code": code, "suggested_department": suggested, "detail": detail}
        return await self.send(feedback_for(order, "return", return_reason=reason, **kw))


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    if isinstance(body, dict):
        return str(body.get("outcome") or body.get("detail") or body)[:300]
    return str(body)[:300]
