"""Module-level endpoints get their objects from the router that includes them (onegrid.provided)."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from onegrid.provided import Provided

deps: Provided[str] = Provided("test")
Name = Annotated[str, Depends(deps)]
routes = APIRouter()


@routes.get("/name")
async def name(n: Name) -> dict[str, str]:
    return {"name": n}


def router(prefix: str, value: str) -> APIRouter:
    r = APIRouter(prefix=prefix, dependencies=[deps.bind(value)])
    r.include_router(routes)
    return r


def test_each_router_hands_its_own_objects_to_the_same_endpoint() -> None:
    app = FastAPI()
    app.include_router(router("/a", "first"))
    app.include_router(router("/b", "second"))
    with TestClient(app) as client:
        assert client.get("/a/name").json() == {"name": "first"}
        assert client.get("/b/name").json() == {"name": "second"}


def test_routes_included_without_their_router_fail_loudly() -> None:
    app = FastAPI()
    app.include_router(routes)
    with TestClient(app) as client, pytest.raises(RuntimeError, match="not bound"):
        client.get("/name")
