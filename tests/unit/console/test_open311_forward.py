"""The console forwards `/open311/v2/...` to the Open311 service as it came (its own upstream here is
an in-memory app that echoes what it received): residents' apps keep the address they know."""

from __future__ import annotations

import json

import httpx
from fastapi import FastAPI, Request, Response

from console.open311_forward import Open311Forward, open311_forward_router


def echo_service() -> FastAPI:
    app = FastAPI()

    @app.api_route("/open311/v2/{path:path}", methods=["GET", "POST"])
    async def echo(request: Request) -> Response:
        seen = {
            "method": request.method,
            "path": request.url.path,
            "query": list(request.query_params.multi_items()),
            "body": (await request.body()).decode(),
            "headers": {k: v for k, v in request.headers.items() if k != "content-length"},
        }
        return Response(
            json.dumps(seen), status_code=429 if "slow" in request.url.path else 201,
            media_type="text/xml; charset=utf-8", headers={"Retry-After": "3", "X-Internal": "x"},
        )  # fmt: skip

    return app


def console(transport: httpx.AsyncBaseTransport) -> FastAPI:
    app = FastAPI()
    app.include_router(
        open311_forward_router(Open311Forward("http://open311", timeout_s=5, transport=transport))
    )
    return app


async def test_method_path_query_body_and_credentials_go_through_unchanged() -> None:
    app = console(httpx.ASGITransport(echo_service()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://console") as c:
        answer = await c.post(
            "/open311/v2/requests.json?jurisdiction_id=yz&x=1&x=2",
            content=b"service_code=001&api_key=k1&description=%E8%B7%AF",
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "X-API-Key": "hotline-key",
                "Authorization": "Bearer t",
                "X-Forwarded-For": "203.0.113.9",
            },
        )
    assert answer.status_code == 201
    assert (
        answer.headers["content-type"] == "text/xml; charset=utf-8" and answer.headers["retry-after"] == "3"
    )
    assert "x-internal" not in answer.headers
    seen = json.loads(answer.content)
    assert (seen["method"], seen["path"]) == ("POST", "/open311/v2/requests.json")
    assert seen["query"] == [["jurisdiction_id", "yz"], ["x", "1"], ["x", "2"]]
    assert seen["body"] == "service_code=001&api_key=k1&description=%E8%B7%AF"
    headers = seen["headers"]
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert (headers["x-api-key"], headers["authorization"]) == ("hotline-key", "Bearer t")
    # The resident's address is kept for the service's per-client limits, the console's appended.
    assert headers["x-forwarded-for"].startswith("203.0.113.9, ")


async def test_the_services_refusals_come_back_as_they_are() -> None:
    app = console(httpx.ASGITransport(echo_service()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://console") as c:
        answer = await c.get("/open311/v2/slow/requests.xml")
    assert answer.status_code == 429 and answer.headers["retry-after"] == "3"


async def test_an_unreachable_service_is_a_georeport_503_with_retry_after() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    app = console(httpx.MockTransport(refuse))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://console") as c:
        as_xml = await c.get("/open311/v2/services.xml")
        as_json = await c.get("/open311/v2/services.json")
    assert as_xml.status_code == as_json.status_code == 503 and as_xml.headers["retry-after"] == "5"
    assert as_xml.text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<errors><error><code>503</code>')
    assert as_json.json()[0]["code"] == 503
