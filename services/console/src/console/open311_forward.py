"""`/open311/v2/...` on the console, forwarded to the Open311 service as it came.

Residents' apps keep one public address for GeoReport v2 while the service that answers it runs on
its own (port 8006). Nothing is decided here: method, path, query, body and the client's credentials
(`Authorization`, `X-API-Key`, GeoReport's `api_key` field) go through unchanged, and the Open311
service checks them, rounds coordinates for anonymous readers and rate-limits by client address: the
console adds the caller's address to `X-Forwarded-For`, which the service's server believes only from
addresses it trusts (uvicorn's FORWARDED_ALLOW_IPS, 127.0.0.1 by default: the local stack; in a
cluster, the console's pods or the ingress, README "Open311"). The answer comes back with its status,
body, content type and Retry-After. If the service cannot be reached the client gets a GeoReport
`errors` document with 503 and Retry-After, as the service itself answers when it cannot serve.
"""

from __future__ import annotations

import logging
from typing import Annotated, Final

import httpx
from fastapi import APIRouter, Depends, Request, Response

from onegrid.auth import public
from onegrid.provided import Provided

log = logging.getLogger(__name__)

PREFIX: Final = "/open311/v2"
# Hop-by-hop headers and those the client library sets itself.
_NOT_FORWARDED: Final = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length", "trailer"}
)
_ANSWERED: Final = ("content-type", "retry-after")


class Open311Forward:
    """The forwarding client; `transport` replaces the network in tests."""

    def __init__(
        self, base_url: str, *, timeout_s: float, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout_s, transport=transport
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def forward(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        client = request.client.host if request.client else None
        if client:
            earlier = request.headers.get("x-forwarded-for")
            headers["x-forwarded-for"] = f"{earlier}, {client}" if earlier else client
        try:
            answer = await self._client.request(
                request.method,
                request.url.path,
                params=list(request.query_params.multi_items()),
                content=await request.body(),
                headers=headers,
            )
        except httpx.HTTPError as error:
            log.warning("open311 forward %s %s: %s", request.method, request.url.path, error)
            return _unavailable(request.url.path)
        kept = {k: answer.headers[k] for k in _ANSWERED if k in answer.headers}
        return Response(content=answer.content, status_code=answer.status_code, headers=kept)


def _unavailable(path: str) -> Response:
    text = "the Open311 service cannot be reached; please retry"
    if path.endswith(".json"):
        body, media = f'[{{"code":503,"description":"{text}"}}]', "application/json; charset=utf-8"
    else:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<errors><error><code>503</code><description>{text}</description></error></errors>"
        )
        media = "text/xml; charset=utf-8"
    return Response(content=body, status_code=503, media_type=media, headers={"Retry-After": "5"})


forwarder: Provided[Open311Forward] = Provided("open311_forward")
Forwarder = Annotated[Open311Forward, Depends(forwarder)]
routes = APIRouter()


@routes.api_route(f"{PREFIX}/{{path:path}}", methods=["GET", "POST"], include_in_schema=False)
async def open311(forward: Forwarder, request: Request) -> Response:
    """GeoReport v2, answered by the Open311 service."""
    return await forward.forward(request)


def open311_forward_router(forward: Open311Forward) -> APIRouter:
    r = APIRouter(
        dependencies=[
            Depends(public("forwarded as is: the Open311 service checks credentials and limits")),
            forwarder.bind(forward),
        ]
    )
    r.include_router(routes)
    return r
