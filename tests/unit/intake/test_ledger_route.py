"""`GET /v1/ledger` as the intake service serves it: the reader's latest judgement, 503 with
Retry-After until the first one, behind the `read metrics` permission; each app answers from its
own reader."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from support.auth import ADMIN, TEST_SECRET

from intake.ledger import LEDGER_RETRY_AFTER_S, LedgerReader, ledger_router
from onegrid.auth import AuthSettings, install
from onegrid.settings import KafkaSettings


def reader(snapshot: dict[str, object] | None) -> LedgerReader:
    r = LedgerReader(
        KafkaSettings(),
        feeds={"legacy.cap.v1": "cap"},
        ledger_topic="intake.ledger.v1",
        set_aside_topics=["intake.dlq.v1"],
        group_id="ledger-test",
        client_id="ledger-test",
    )
    r.snapshot = snapshot
    return r


def app_of(r: LedgerReader) -> httpx.AsyncClient:
    app = FastAPI()
    install(app, AuthSettings(hs256_secret=TEST_SECRET), environment="test")
    app.include_router(ledger_router(r))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://intake")


async def test_each_app_answers_from_its_own_reader() -> None:
    judged = {"feeds": {"cap": {"received": 3}}, "unaccounted": 0}
    async with app_of(reader(judged)) as a, app_of(reader(None)) as b:
        answered, waiting = await a.get("/v1/ledger", headers=ADMIN), await b.get("/v1/ledger", headers=ADMIN)
    assert (answered.status_code, answered.json()) == (200, judged)
    assert waiting.status_code == 503
    assert waiting.headers["retry-after"] == str(LEDGER_RETRY_AFTER_S)


async def test_the_ledger_takes_a_token() -> None:
    async with app_of(reader({"feeds": {}})) as c:
        assert (await c.get("/v1/ledger")).status_code == 401
