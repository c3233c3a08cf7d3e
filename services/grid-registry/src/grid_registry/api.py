"""Grid-registry HTTP API."""

from __future__ import annotations

from fastapi import APIRouter
from onegrid.registry_view import RegistryView


def router(view: RegistryView) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["registry"])

    @r.get("/summary")
    async def summary() -> dict[str, int]:
        """How many current records of each kind the changelog holds."""
        return {kind: len(items) for kind, items in view.records.items()}

    return r
