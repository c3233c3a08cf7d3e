"""Limits for public endpoints: a token bucket per client address (429 with Retry-After) and a cap
on request bodies (413), both in memory and per process: N instances of a service allow a client N
times the configured rate (the README says so; set per-instance rates accordingly).

`RateLimiter(rate_per_s, burst)` refills `rate_per_s` tokens a second up to `burst`; each request
takes one. It remembers at most `max_clients` addresses (the least recently seen are forgotten: a
forgotten client starts with a full bucket, which errs on the side of serving). Behind a proxy the
address is the proxy's unless uvicorn is told to trust X-Forwarded-For (--proxy-headers).
`BodyLimit` is ASGI middleware: a declared Content-Length over the limit is refused before the body
is read; a streamed body is cut off as soon as it passes the limit.
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import HTTPException, Request
from pydantic import BaseModel, Field

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


class RateLimit(BaseModel):
    """Settings of one limit (embed in a service's settings, e.g. ONEGRID_OPEN311_SUBMIT_RATE='{...}')."""

    rate_per_s: float = Field(default=5.0, gt=0)
    burst: int = Field(default=20, ge=1)


class RateLimiter:
    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    @classmethod
    def of(cls, limit: RateLimit) -> RateLimiter:
        return cls(limit.rate_per_s, limit.burst)

    def take(self, key: str) -> float:
        """0 if the request may go ahead (a token is taken), else the seconds until one is free."""
        now = self._clock()
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait

    def dependency(self, name: str) -> Callable[[Request], Awaitable[None]]:
        """A FastAPI dependency refusing with 429 and Retry-After (whole seconds, at least 1)."""

        async def rate_limited(request: Request) -> None:
            client = request.client.host if request.client else "unknown"
            wait = self.take(client)
            if wait > 0:
                raise HTTPException(
                    429,
                    f"{name}: too many requests from {client}; retry after {math.ceil(wait)} s",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )

        return rate_limited


class BodyLimit:
    """ASGI middleware: bodies over `default_bytes` (or the limit of the longest matching path
    prefix in `paths`) are refused with 413 and a JSON `detail`."""

    def __init__(self, app: Asgi, *, default_bytes: int, paths: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default = default_bytes
        self.paths = sorted((paths or {}).items(), key=lambda kv: -len(kv[0]))

    def limit_for(self, path: str) -> int:
        return next((n for prefix, n in self.paths if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        seen = 0
        started = False

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if not started:
                await _too_large(send, limit)


class BodyTooLarge(HTTPException):
    """Raised from `receive`: an HTTPException so that FastAPI's body parsing passes it on as a 413
    (it turns other exceptions into a 400) and the app's handlers render it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body larger than {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
