"""The console asks the evaluation service for rankings in the operator's own name."""

from __future__ import annotations

import httpx
import pytest

from console.upstream import Unavailable, Upstream


async def test_rankings_forward_the_operator_token_and_the_minimum_sample() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "ranked": [{"rank": 1, "value": "shuiwu", "figure": 0.9, "sample": 40}],
                "unranked": [{"value": "zhujian", "sample": 3, "why": "insufficient_sample"}],
                "min_cases": 20,
            },
        )

    up = Upstream(audit_url="http://a", dispatch_url="http://d", evaluation_url="http://e", timeout_s=1)
    up._client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    doc = await up.rankings({"dimension": "department", "min_cases": 20}, "Bearer t0k")
    assert doc is not None and doc["unranked"][0]["why"] == "insufficient_sample"
    assert seen[0].url.path == "/v1/rankings" and seen[0].url.params["min_cases"] == "20"
    assert seen[0].headers["authorization"] == "Bearer t0k"


async def test_an_evaluation_error_is_reported_not_raised_as_a_crash() -> None:
    up = Upstream(audit_url="http://a", dispatch_url="http://d", evaluation_url="http://e", timeout_s=1)
    up._client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(403, text="scope")))
    with pytest.raises(Unavailable, match="403"):
        await up.rankings({}, None)
