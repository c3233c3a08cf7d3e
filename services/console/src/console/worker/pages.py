"""The grid worker's app at `/worker/`: plain HTML, CSS and ES modules served as they are (no build
step, nothing from the internet), a web app manifest and a service worker scoped to `/worker/` so
the app installs on a phone and opens without a connection. The files are shells without data; the
data comes from /worker/api/ with the worker's token."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

from onegrid.auth import public

APP = Path(__file__).resolve().parents[1] / "static" / "worker"
MEDIA = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# The service worker revalidates every file, so a new release reaches phones on their next start.
_NO_CACHE = {"Cache-Control": "no-cache"}


def app_files() -> dict[str, Path]:
    return {p.name: p for p in APP.iterdir() if p.suffix in MEDIA}


def worker_pages() -> APIRouter:
    r = APIRouter(
        include_in_schema=False,
        dependencies=[Depends(public("the worker app's files, without data; /worker/api/ is guarded"))],
    )
    files = app_files()

    @r.get("/worker")
    async def bare() -> RedirectResponse:
        return RedirectResponse("/worker/")

    @r.get("/worker/")
    async def index() -> FileResponse:
        return FileResponse(files["index.html"], media_type=MEDIA[".html"], headers=_NO_CACHE)

    @r.get("/worker/{name}")
    async def asset(name: str) -> FileResponse:
        path = files.get(name)
        if path is None:
            raise HTTPException(404, f"no file {name[:80]} in the worker app")
        headers = dict(_NO_CACHE)
        if name == "sw.js":
            headers["Service-Worker-Allowed"] = "/worker/"
        return FileResponse(path, media_type=MEDIA[path.suffix], headers=headers)

    return r
