"""Idempotency keys live in namespaces (issue 15 item 7): a department's feedback_id, an operator's
Idempotency-Key and intake's deterministic event ids never meet, so no sender can claim a future
case event's id and suppress the case; a message its sender had no right to send claims nothing.
The real desk on the session's PostgreSQL, with the dispatch migrations (and 0004's upgrade of rows
written before the namespaces)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from support.auth import token
from unit.dispatch.sample import as_records, case_bytes, registry_records

from dispatch.api import router as dispatch_router
from dispatch.bootstrap import MIGRATIONS
from dispatch.desk import Desk
from dispatch.domain.clock import ManualClock
from dispatch.domain.facts import decode_case, decode_feedback
from dispatch.domain.lifecycle import Command, Lifecycle, Policy
from dispatch.domain.routing import Directory
from dispatch.domain.states import Action
from dispatch.store import Outlets
from intake.domain.identity import case_id_for, event_id_for
from onegrid.auth import AuthSettings, install
from onegrid.db import make_engine, migrate

pytestmark = pytest.mark.asyncio(loop_scope="session")

DEPT = "hj-urban-mgmt"
# The ids intake will give the report of a party record that has not arrived yet: anyone can compute them.
FUTURE_CASE = str(case_id_for("party", "MQRJ20260301009999"))
FUTURE_EVENT = str(event_id_for("party", "MQRJ20260301009999", "report"))


def report(event_id: str | None = None, case_id: str | None = None) -> Any:
    body = json.loads(case_bytes(case_id=case_id))
    if event_id is not None:
        body["event_id"] = event_id
    return decode_case(json.dumps(body).encode())


def feedback(case_id: str, order_id: str, feedback_id: str, department: str = DEPT) -> Any:
    return decode_feedback(
        json.dumps(
            {
                "feedback_id": feedback_id,
                "order_id": order_id,
                "case_id": case_id,
                "department": department,
                "kind": "acknowledge",
                "at": "2026-03-01T02:05:00Z",
                "actor": {"kind": "department", "id": department, "display": ""},
                "note": None,
                "evidence": [],
                "return_reason": None,
            }
        ).encode()
    )


def asyncpg_url(database_url: str) -> str:
    return "postgresql+asyncpg://" + database_url.split("://", 1)[1]


async def schema_at(database_url: str, revision: str = "head") -> tuple[str, AsyncEngine]:
    schema = f"dispatch_idem_{uuid.uuid4().hex[:8]}"
    await migrate(asyncpg_url(database_url), schema, MIGRATIONS, to=revision)
    return schema, make_engine(asyncpg_url(database_url), schema, pool_size=2)


LIFECYCLE = Lifecycle(Directory(as_records(registry_records())), Policy())


def desk_on(engine: AsyncEngine) -> Desk:
    async def no_topics(_: str) -> None:
        return None

    return Desk(
        engine=engine,
        lifecycle=lambda: LIFECYCLE,
        clock=ManualClock(),
        outlets=Outlets(lifecycle_topic="t.lifecycle"),
        ensure_topic=no_topics,
    )


@pytest_asyncio.fixture(loop_scope="session")
async def desk(database_url: str) -> AsyncIterator[Desk]:
    _, engine = await schema_at(database_url)
    yield desk_on(engine)
    await engine.dispose()


async def test_a_departments_feedback_cannot_claim_a_future_case_events_id(desk: Desk) -> None:
    pre = await desk.feedback(feedback(FUTURE_CASE, str(uuid.uuid4()), FUTURE_EVENT))
    assert pre.outcome == "refused:transition.case_unknown"
    arrived = await desk.case_event(report(FUTURE_EVENT, FUTURE_CASE))
    assert arrived.outcome == "applied" and arrived.case is not None
    assert (await desk.case_event(report(FUTURE_EVENT, FUTURE_CASE))).outcome == "duplicate:applied"


async def test_an_operators_idempotency_key_cannot_claim_a_case_events_id(desk: Desk) -> None:
    first = await desk.case_event(report())
    assert first.applied and first.case is not None
    future_event = str(uuid.uuid4())
    key = desk.action_key("staff:street_operator", future_event)
    suspend = Command(Action.SUSPEND, reason="operator.test")
    assert (await desk.act(first.case.case_id, suspend, key)).outcome == "applied"
    assert (await desk.act(first.case.case_id, suspend, key)).outcome == "duplicate:applied"
    later = await desk.case_event(report(future_event))
    assert later.outcome == "applied"


async def test_the_same_key_from_two_senders_is_two_messages(desk: Desk) -> None:
    case = (await desk.case_event(report())).case
    assert case is not None and case.orders
    order = case.orders[0]
    same = str(uuid.uuid4())
    # another department's feedback on this order is refused and claims nothing...
    stranger = await desk.feedback(feedback(case.case_id, order.order_id, same, department="hj-eco-env"))
    assert stranger.outcome == "refused:feedback.department_mismatch"
    # ...so the department the order went to is not told its own feedback was a duplicate
    own = await desk.feedback(feedback(case.case_id, order.order_id, same, department=order.department))
    assert own.outcome == "applied"
    # and two operators' identical keys are each their own action
    note = Command(Action.SUSPEND, reason="operator.test")
    assert (await desk.act(case.case_id, note, desk.action_key("staff:a", same))).outcome == "applied"
    resume = Command(Action.RESUME, reason="operator.test")
    assert (await desk.act(case.case_id, resume, desk.action_key("staff:b", same))).outcome == "applied"


async def test_rows_from_before_the_namespaces_still_dedupe_what_they_applied(database_url: str) -> None:
    schema, engine = await schema_at(database_url, "0003")
    old_event, old_case = str(uuid.uuid4()), str(uuid.uuid4())
    registered = LIFECYCLE.register(report(old_event, old_case), ManualClock().now()).case
    try:
        async with engine.begin() as conn:
            # An applied case event, and a pre-claim of a future event's id (refused: no such case yet).
            await conn.execute(
                text(
                    "INSERT INTO cases (case_id, state, department, tier, grid, hops, body, registered_at, "
                    "updated_at) VALUES (:c, 'registered', NULL, 'street', NULL, 0, CAST(:b AS jsonb), now(), now())"
                ),
                {"c": old_case, "b": msgspec.json.encode(registered).decode()},
            )
            await conn.execute(
                text(
                    "INSERT INTO processed (message_id, case_id, outcome, at) VALUES "
                    "(:a, :c, 'applied', now()), (:f, :fc, 'refused:transition.case_unknown', now())"
                ),
                {"a": old_event, "c": old_case, "f": FUTURE_EVENT, "fc": FUTURE_CASE},
            )
        await migrate(asyncpg_url(database_url), schema, MIGRATIONS)
        d = desk_on(engine)
        assert (await d.case_event(report(old_event, old_case))).outcome == "duplicate:applied"
        assert (await d.case_event(report(FUTURE_EVENT, FUTURE_CASE))).outcome == "applied"
    finally:
        await engine.dispose()


async def test_message_lookup_answers_each_caller_its_own_message(desk: Desk) -> None:
    case = (await desk.case_event(report())).case
    assert case is not None and case.orders
    same = str(uuid.uuid4())
    fb = feedback(case.case_id, case.orders[0].order_id, same, department=case.orders[0].department)
    assert (await desk.feedback(fb)).applied
    suspend = Command(Action.SUSPEND, reason="operator.test")
    assert (await desk.act(case.case_id, suspend, desk.action_key("admin:a", same))).applied
    app = FastAPI()
    app.include_router(dispatch_router(desk.engine, desk))
    install(app, AuthSettings(), environment="test")
    bearer = token("department_operator", subject=case.orders[0].department, departments=[DEPT])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app),
        base_url="http://svc",
        headers={"Authorization": f"Bearer {bearer}"},
    ) as c:
        got = (await c.get(f"/v1/messages/{same}")).json()
    assert (got["source"], got["outcome"]) == ("feedback", "applied")
