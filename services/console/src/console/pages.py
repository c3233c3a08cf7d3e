"""The console's pages: plain HTML, CSS and JavaScript served as they are (no build step, nothing
from the internet). Each page polls the JSON API; the case page reads its id from the path.

The pages are shells without data, open to anyone; every figure they show comes from /api/, which
takes the operator's token (given once as `/#token=<jwt>`, then kept in the tab's sessionStorage)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from onegrid.auth import public

STATIC = Path(__file__).parent / "static"
_NO_CACHE = {"Cache-Control": "no-cache"}


# No objects to hand the endpoints: they serve files from the package, so there is nothing to bind.
routes = APIRouter(include_in_schema=False)


@routes.get("/")
async def overview() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers=_NO_CACHE)


@routes.get("/map")
async def grid_map() -> FileResponse:
    return FileResponse(STATIC / "map.html", headers=_NO_CACHE)


@routes.get("/cases/{case_id}")
async def case_page(case_id: str) -> FileResponse:
    if not case_id or len(case_id) > 64:
        raise HTTPException(404, "no such case page")
    return FileResponse(STATIC / "case.html", headers=_NO_CACHE)


@routes.get("/cases")
async def cases() -> RedirectResponse:
    return RedirectResponse("/map")


def pages_router() -> APIRouter:
    r = APIRouter(
        include_in_schema=False, dependencies=[Depends(public("page shells without data; /api/ is guarded"))]
    )
    r.include_router(routes)
    return r


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)
