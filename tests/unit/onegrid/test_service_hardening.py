"""Every service's app: health says nothing about its failure but that it failed, and every answer
carries the browser protections (CSP without inline script, no framing, nosniff, no referrer)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from onegrid.auth import public
from onegrid.service import Runtime, create_app
from onegrid.settings import ServiceSettings


async def _get(app: object, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:  # type: ignore[arg-type]
        return await c.get(path)


@pytest.mark.asyncio
async def test_healthz_shows_no_exception_text_and_pages_carry_the_security_headers() -> None:
    rt = Runtime(settings=ServiceSettings(service_name="t", environment="test"))
    page = APIRouter()

    @page.get("/page", dependencies=[Depends(public("a page"))])
    async def a_page() -> HTMLResponse:
        return HTMLResponse("<html></html>")

    app = create_app(rt, title="t", routers=[page])
    rt.failure = RuntimeError("connection to db.internal:5432 as onegrid_admin failed")
    health = await _get(app, "/healthz")
    assert health.status_code == 500 and health.json() == {"status": "failed"}
    for path in ("/page", "/healthz"):
        headers = (await _get(app, path)).headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"].split("script-src")[1].split(";")[0]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
    assert "content-security-policy" not in (await _get(app, "/docs")).headers  # Swagger UI's CDN


@pytest.mark.asyncio
async def test_bodies_are_small_unless_an_endpoint_says_otherwise() -> None:
    """Before: every endpoint of every service read up to 16 MiB."""
    rt = Runtime(settings=ServiceSettings(service_name="t", environment="test"))
    r = APIRouter()

    @r.post("/small", dependencies=[Depends(public("test"))])
    @r.post("/big/one", dependencies=[Depends(public("test"))])
    async def take(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    app = create_app(rt, title="t", routers=[r], body_limits={"/big/": 4 * 1024 * 1024})
    body = b"x" * (1024 * 1024)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        assert (await c.post("/small", content=body)).status_code == 413
        assert (await c.post("/small", content=b"x" * 1000)).status_code == 200
        assert (await c.post("/big/one", content=body)).json() == {"bytes": len(body)}
