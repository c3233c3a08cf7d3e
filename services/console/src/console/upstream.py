"""The other services' APIs the console reads on demand (never on a hot path): the audit trail of a
case (audit GET /v1/cases/{id}/story), a case as dispatch holds it (GET /v1/cases/{id}), the
evaluation's rankings (GET /v1/rankings) and intake's ledger (GET /v1/ledger).

Each call returns the JSON, or raises `Unavailable` with a message for the page (the service is
down, or answered an error); a 404 is `None`, not an error. Calls carry the operator's own
`Authorization` header, so audit and dispatch apply that operator's role and scope (the console
holds no credentials of its own).
"""

from __future__ import annotations

from typing import Any

import httpx


class Unavailable(RuntimeError):
    pass


class Upstream:
    def __init__(
        self,
        *,
        audit_url: str,
        dispatch_url: str,
        timeout_s: float,
        evaluation_url: str = "http://127.0.0.1:8005",
        intake_url: str = "http://127.0.0.1:8002",
    ) -> None:
        self.intake_url = intake_url
        self.audit_url = audit_url
        self.dispatch_url = dispatch_url
        self.evaluation_url = evaluation_url
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def close(self) -> None:
        await self._client.aclose()

    async def _get(self, url: str, authorization: str | None, params: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": authorization} if authorization else {}
        try:
            resp = await self._client.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise Unavailable(f"{url}: {type(exc).__name__} {exc}") from exc
        if resp.status_code == 404:
            return None
        if resp.status_code >= 400:
            raise Unavailable(f"{url}: HTTP {resp.status_code} {resp.text[:200]}")
        return resp.json()

    async def story(self, case_id: str, authorization: str | None) -> dict[str, Any] | None:
        """The case's audit trail in log order, or None when the trail knows nothing of it (or not
        in the caller's scope)."""
        doc = await self._get(f"{self.audit_url}/v1/cases/{case_id}/story", authorization)
        return doc if isinstance(doc, dict) else None

    async def dispatch_case(self, case_id: str, authorization: str | None) -> dict[str, Any] | None:
        doc = await self._get(f"{self.dispatch_url}/v1/cases/{case_id}", authorization)
        return doc if isinstance(doc, dict) else None

    async def rankings(self, params: dict[str, Any], authorization: str | None) -> dict[str, Any] | None:
        """The evaluation's ranking (units below the minimum sample listed apart, never ranked)."""
        doc = await self._get(f"{self.evaluation_url}/v1/rankings", authorization, params)
        return doc if isinstance(doc, dict) else None

    async def ledger(self, authorization: str | None) -> dict[str, Any] | None:
        """Every legacy record accounted for, per feed and hour, with the unaccounted/duplicated alarms."""
        doc = await self._get(f"{self.intake_url}/v1/ledger", authorization)
        return doc if isinstance(doc, dict) else None
