"""The other services' APIs the console reads on demand (never on a hot path): the audit trail of a
case (audit GET /v1/cases/{id}/story) and a case as dispatch holds it (GET /v1/cases/{id}).

Each call returns the JSON, or raises `Unavailable` with a message for the page (the service is
down, or answered an error); a 404 is `None`, not an error.
"""

from __future__ import annotations

from typing import Any

import httpx


class Unavailable(RuntimeError):
    pass


class Upstream:
    def __init__(self, *, audit_url: str, dispatch_url: str, timeout_s: float) -> None:
        self.audit_url = audit_url
        self.dispatch_url = dispatch_url
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def close(self) -> None:
        await self._client.aclose()

    async def _get(self, url: str, params: dict[str, Any] | None = None) -> Any:
        try:
            resp = await self._client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise Unavailable(f"{url}: {type(exc).__name__} {exc}") from exc
        if resp.status_code == 404:
            return None
        if resp.status_code >= 400:
            raise Unavailable(f"{url}: HTTP {resp.status_code} {resp.text[:200]}")
        return resp.json()

    async def story(self, case_id: str) -> dict[str, Any] | None:
        """The case's audit trail in log order, or None when the trail knows nothing of it."""
        doc = await self._get(f"{self.audit_url}/v1/cases/{case_id}/story")
        return doc if isinstance(doc, dict) else None

    async def dispatch_case(self, case_id: str) -> dict[str, Any] | None:
        doc = await self._get(f"{self.dispatch_url}/v1/cases/{case_id}")
        return doc if isinstance(doc, dict) else None
