"""Who may see and do what: every role x resource x action against the services' real routers on
the real PostgreSQL (in-process over ASGI), with three cases placed in the grid hierarchy:

    A  Hanjiang 321003 / street 321003009 / grid 321003009001003, dispatched to chengguan
    B  Hanjiang 321003 / street 321003010, dispatched to shuiwu
    C  Gaoyou  321084 / street 321084001, dispatched to chengguan

Each test builds the whole expected row per role and compares it at once, so a failure prints the
matrix cells that differ."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import text
from support.audit_trail import case_event, fresh_schema
from support.auth import token

import open311
from audit.api import router as audit_router
from audit.trail_writer import TrailWriter
from console.api import router as console_router
from console.domain.spans import Span, SpanStore
from console.feeds import Feeds
from console.replay import Replayer
from console.settings import Settings as ConsoleSettings
from console.upstream import Upstream
from console.watch import KafkaWatch
from dispatch.api import router as dispatch_router
from dispatch.bootstrap import MIGRATIONS as DISPATCH_MIGRATIONS
from dispatch.desk import Result
from dispatch.domain.clock import SystemClock
from dispatch.store import Outlets, Webhook
from evaluation.api import router as evaluation_router
from evaluation.bootstrap import MIGRATIONS as EVALUATION_MIGRATIONS
from evaluation.settings import Settings as EvaluationSettings
from evaluation.store import ReadModels
from intake.domain.crosswalk import Crosswalk
from onegrid.auth import AuthSettings, install
from onegrid.auth import keys as api_keys
from onegrid.auth.policy import Role
from onegrid.db import make_engine, migrate
from onegrid.kafka.producer import make_producer
from onegrid.ratelimit import RateLimiter
from onegrid.settings import KafkaSettings
from open311.api import ApiSettings, open311_router

from .conftest import read_all
from .test_registry_harness import running_registry

pytestmark = pytest.mark.asyncio(loop_scope="session")

A, B, C = (str(uuid.UUID(int=i)) for i in (0xA, 0xB, 0xC))
PLACES = {
    A: ("321003", "321003009", "321003009001", "321003009001003", "chengguan"),
    B: ("321003", "321003010", "321003010002", "321003010002001", "shuiwu"),
    C: ("321084", "321084001", "321084001001", "321084001001001", "chengguan"),
}
SCOPES: dict[str, dict[str, Any]] = {
    "grid_worker": {"scope": ["321003009001003"]},
    "community_operator": {"scope": ["321003009001"]},
    "street_operator": {"scope": ["321003009"]},
    "district_operator": {"scope": ["321003"]},
    "city_operator": {"scope": ["321000"]},
    "department_operator": {"departments": ["chengguan"]},
    "auditor": {},
    "admin": {},
    "bi_reader": {"scope": ["321000"]},
}
ROLES = [*SCOPES, "anonymous"]
UNKNOWN_TO_DESK = str(uuid.UUID(int=0xC0FFEE))
FEEDBACK_EXAMPLE = json.loads((Path(__file__).parents[2] / "contracts/schemas/feedback.v1.json").read_text())[
    "examples"
][0]
Call = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def headers(role: str) -> dict[str, str]:
    if role == "anonymous":
        return {}
    return {"Authorization": f"Bearer {token(role, subject=f'staff:{role}', **SCOPES[role])}"}


def asgi(app: FastAPI, role: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://svc", headers=headers(role))


def app_of(*routers: Any, auth: AuthSettings | None = None) -> FastAPI:
    app = FastAPI()
    for r in routers:
        app.include_router(r)
    install(app, auth or AuthSettings(), environment="test")
    return app


async def statuses(app: FastAPI, call: Call, roles: list[str] = ROLES) -> dict[str, int]:
    out = {}
    for role in roles:
        async with asgi(app, role) as c:
            out[role] = (await call(c)).status_code
    return out


def expect(default: int, **cells: int) -> dict[str, int]:
    """A matrix row: `default` for every staff role, 401 for anonymous, unless a cell says otherwise."""
    return {role: cells.get(role, 401 if role == "anonymous" else default) for role in ROLES}


# -- dispatch: cases ------------------------------------------------------------------------------
class StubDesk:
    """The desk's answers are not under test here: who reaches it is."""

    def __init__(self) -> None:
        self.acted: list[str] = []
        self.commands: list[Any] = []
        self.feedbacks: list[Any] = []
        self.clock = SystemClock()
        self.outlets = Outlets(lifecycle_topic="t", webhooks={"chengguan": Webhook("http://x", "s" * 32)})

    async def act(self, case_id: str, cmd: Any, key: str | None) -> Result:
        self.acted.append(case_id)
        self.commands.append(cmd)
        return Result("applied")

    async def feedback(self, fb: Any) -> Result:
        self.feedbacks.append(fb)
        if str(fb.case_id) == UNKNOWN_TO_DESK:  # as the desk refuses feedback on an order it never sent
            case = SimpleNamespace(case_id=str(fb.case_id), state=SimpleNamespace(value="closed"), seq=7)
            return Result("refused:feedback.unknown_order", case, "no live order")  # type: ignore[arg-type]
        return Result("applied")


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def dispatch_app(database_url: str) -> Any:
    url = "postgresql+asyncpg://" + database_url.split("://", 1)[1]
    schema = f"dispatch_acl_{uuid.uuid4().hex[:8]}"
    await migrate(url, schema, DISPATCH_MIGRATIONS)
    engine = make_engine(url, schema, pool_size=2)
    async with engine.begin() as conn:
        for case_id, (district, street, community, grid, dept) in PLACES.items():
            body = {
                "case_id": case_id,
                "facts": {
                    "division": {"district": district, "street": street, "community": community, "grid": grid}
                },
                "orders": [{"order_id": str(uuid.uuid4()), "department": dept, "kind": "assign"}],
            }
            await conn.execute(
                text(
                    "INSERT INTO cases (case_id, state, department, tier, grid, hops, body, registered_at, updated_at) "
                    "VALUES (:c, 'dispatched', :d, 'street', :g, 1, CAST(:b AS jsonb), now(), now())"
                ),
                {"c": case_id, "d": dept, "g": grid, "b": json.dumps(body)},
            )
    desk = StubDesk()
    app = app_of(dispatch_router(engine, desk))  # type: ignore[arg-type]
    app.state.desk = desk
    yield app
    await engine.dispose()


async def test_cases_are_listed_within_each_roles_scope(dispatch_app: FastAPI) -> None:
    seen: dict[str, Any] = {}
    for role in ROLES:
        async with asgi(dispatch_app, role) as c:
            r = await c.get("/v1/cases")
            seen[role] = r.status_code if r.status_code != 200 else {x["case_id"] for x in r.json()}
    assert seen == {
        "grid_worker": {A},
        "community_operator": {A},
        "street_operator": {A},
        "district_operator": {A, B},
        "city_operator": {A, B, C},
        "department_operator": {A, C},
        "auditor": {A, B, C},
        "admin": {A, B, C},
        "bi_reader": 403,
        "anonymous": 401,
    }


async def test_reading_one_case_outside_the_scope_is_not_found(dispatch_app: FastAPI) -> None:
    got = {
        cid: await statuses(dispatch_app, lambda c, cid=cid: c.get(f"/v1/cases/{cid}")) for cid in (A, B, C)
    }
    assert got == {
        A: expect(200, bi_reader=403),
        B: expect(404, district_operator=200, city_operator=200, auditor=200, admin=200, bi_reader=403),
        C: expect(404, city_operator=200, department_operator=200, auditor=200, admin=200, bi_reader=403),
    }


async def test_acting_needs_the_act_permission_the_scope_and_ones_own_name(dispatch_app: FastAPI) -> None:
    got = {}
    for cid in (A, C):
        row = {}
        for role in ROLES:
            async with asgi(dispatch_app, role) as c:
                body = {"actor": {"kind": "staff", "id": f"staff:{role}"}}
                row[role] = (await c.post(f"/v1/cases/{cid}/escalate", json=body)).status_code
        got[cid] = row
    refused = {"department_operator": 403, "auditor": 403, "bi_reader": 403}
    assert got == {
        A: expect(200, **refused),
        C: expect(404, city_operator=200, admin=200, **refused),
    }
    async with asgi(dispatch_app, "street_operator") as c:
        someone_else = await c.post(
            f"/v1/cases/{A}/escalate", json={"actor": {"kind": "staff", "id": "staff:boss"}}
        )
    assert someone_else.status_code == 403 and "own name" in someone_else.json()["detail"]


async def test_the_actor_is_the_token_and_every_string_is_bounded(dispatch_app: FastAPI) -> None:
    """A 2 MB display name once became a lifecycle event no relay could send; a body chose its kind."""
    desk = dispatch_app.state.desk
    async with asgi(dispatch_app, "street_operator") as c:
        huge = {"actor": {"id": "staff:street_operator", "display": "张" * (2 * 1024 * 1024)}}
        too_big = await c.post(f"/v1/cases/{A}/escalate", json=huge)
        many = await c.post(f"/v1/cases/{A}/escalate", json={"evidence": ["k"] * 51})
        long_ref = await c.post(f"/v1/cases/{A}/escalate", json={"evidence": ["k" * 2000]})
        system = await c.post(
            f"/v1/cases/{A}/escalate", json={"actor": {"kind": "system", "id": "staff:street_operator"}}
        )
        n = len(desk.commands)
        implicit = await c.post(f"/v1/cases/{A}/escalate", json={})
    assert [r.status_code for r in (too_big, many, long_ref)] == [422, 422, 422]
    assert system.status_code == 403 and "token decides" in system.json()["detail"]
    assert implicit.status_code == 200
    actor = desk.commands[n].actor
    assert (actor.kind, actor.id) == ("staff", "staff:street_operator")
    async with asgi(dispatch_app, "department_operator") as c:
        fb = {**FEEDBACK_EXAMPLE, "department": "chengguan"}
        loud = await c.post(
            "/v1/feedback",
            json={
                **fb,
                "actor": {"kind": "department", "id": "staff:department_operator", "display": "x" * 101},
            },
        )
        someone = await c.post(
            "/v1/feedback", json={**fb, "actor": {"kind": "staff", "id": "staff:boss", "display": "王*"}}
        )
    assert loud.status_code == 422
    assert someone.status_code == 403 and "must be the caller" in someone.json()["detail"]


async def test_a_merge_target_must_exist_and_be_in_scope(dispatch_app: FastAPI) -> None:
    """Before: merge_into was never looked up (any id, any case in the city)."""

    def merge(target: str) -> Call:
        return lambda c: c.post(
            f"/v1/cases/{A}/merge", json={"merge_into": target, "reason": "merge.duplicate"}
        )

    nowhere = str(uuid.UUID(int=0xDEAD))
    roles = ["street_operator", "district_operator", "city_operator"]
    assert await statuses(dispatch_app, merge(B), roles) == {
        "street_operator": 404,
        "district_operator": 200,
        "city_operator": 200,
    }
    assert await statuses(dispatch_app, merge(C), roles) == {
        "street_operator": 404,
        "district_operator": 404,
        "city_operator": 200,
    }
    assert await statuses(dispatch_app, merge(nowhere), ["admin"]) == {"admin": 404}


async def test_refused_feedback_does_not_reveal_someone_elses_case(dispatch_app: FastAPI) -> None:
    """Before: feedback about any case id answered with that case's state and seq."""
    other = UNKNOWN_TO_DESK
    actor = {"kind": "department", "id": "staff:department_operator", "display": ""}
    body = {**FEEDBACK_EXAMPLE, "department": "chengguan", "case_id": other, "actor": actor}
    async with asgi(dispatch_app, "department_operator") as c:
        refused = await c.post("/v1/feedback", json=body)
    assert refused.status_code == 409 and refused.json()["outcome"] == "refused:feedback.unknown_order"
    assert "state" not in refused.json() and "seq" not in refused.json()


async def test_feedback_only_from_the_department_itself(dispatch_app: FastAPI) -> None:
    # The department's system answers in its own name (the token's subject).
    example = {
        **FEEDBACK_EXAMPLE,
        "actor": {"kind": "department", "id": "staff:department_operator", "display": ""},
    }

    def post(dept: str) -> Call:
        return lambda c: c.post("/v1/feedback", json={**example, "department": dept})

    own = await statuses(dispatch_app, post("chengguan"))
    other = await statuses(dispatch_app, post("shuiwu"))
    assert own == expect(403, department_operator=200, admin=200)
    assert other == expect(403, admin=200)


async def test_only_administrators_rotate_a_departments_webhook_secret(dispatch_app: FastAPI) -> None:
    def rotate(dept: str) -> Call:
        return lambda c: c.post(f"/v1/departments/{dept}/webhook-secret")

    # chengguan has a webhook in this matrix; a department without one is not found, even for admins
    assert await statuses(dispatch_app, rotate("chengguan")) == expect(403, admin=200)
    assert await statuses(dispatch_app, rotate("shuiwu")) == expect(403, admin=404)


# -- grid registry -----------------------------------------------------------------------------
async def test_registry_reads_for_staff_writes_for_admins(
    database_url: str, kafka_settings: KafkaSettings, topics: Any
) -> None:
    topic = await topics("grid.registry", compacted=True)
    async with running_registry(database_url, kafka_settings, topic) as running:
        app = running.service.app
        reads = await statuses(app, lambda c: c.get("/v1/records/division"))
        writes = await statuses(
            app, lambda c: c.put("/v1/records/division/321003", json={"code": "321003", "kind": "division"})
        )
    assert reads == expect(200)
    assert {r: s for r, s in writes.items()} == expect(403, admin=writes["admin"])
    assert writes["admin"] not in (401, 403)  # the admin reaches validation (the body is incomplete)


async def test_staff_names_and_phones_only_for_roles_with_personal_data_rights(
    database_url: str, kafka_settings: KafkaSettings, topics: Any
) -> None:
    """Before: every staff role city-wide read every staff member's name and phone."""
    topic = await topics("grid.registry", compacted=True)
    async with running_registry(database_url, kafka_settings, topic, seed=True) as running:
        app = running.service.app
        seen: dict[str, Any] = {}
        for role in ROLES:
            async with asgi(app, role) as c:
                page = await c.get("/v1/records/staff", params={"limit": 5})
                if page.status_code != 200:
                    seen[role] = page.status_code
                    continue
                first = page.json()["items"][0]
                one = (await c.get(f"/v1/records/staff/{first['code']}")).json()
                history = (await c.get(f"/v1/history/staff/{first['code']}")).json()
                seen[role] = {(r["name"], r["phone"]) for r in (first, one, history[-1]["record"])}
    full = {frozenset(v) for v in seen.values() if isinstance(v, set) and all("*" not in n for n, _ in v)}
    assert len(full) == 1
    [(name, phone)] = next(iter(full))
    hidden = {(name[0] + "*" * (len(name) - 1), "*" * (len(phone) - 4) + phone[-4:])}
    rights = ("grid_worker", "community_operator", "street_operator", "district_operator", "city_operator")
    assert seen == {
        **{role: {(name, phone)} for role in (*rights, "admin")},
        **{role: hidden for role in ("department_operator", "auditor", "bi_reader")},
        "anonymous": 401,
    }


# -- audit -------------------------------------------------------------------------------------
@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def audit_app(database_url: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit.store import TrailStore

    db = await fresh_schema(database_url)
    records = []
    for offset, (case_id, (district, street, community, grid, _)) in enumerate(PLACES.items()):
        division = {"district": district, "street": street, "community": community, "grid": grid}
        records.append(
            case_event(
                "cases.v1",
                offset,
                case_id,
                division=division,
                reporter={"name": "王建国", "phone": "13805271234"},
            )
        )
    await TrailWriter(db).append(records)
    yield app_of(audit_router(TrailStore(db), Ed25519PrivateKey.generate().public_key()))
    await db.close()


async def test_raw_trail_for_auditors_and_stories_in_scope(audit_app: FastAPI) -> None:
    entries = await statuses(audit_app, lambda c: c.get("/v1/entries"))
    export = await statuses(audit_app, lambda c: c.get("/v1/export/heads.jsonl"))
    story_a = await statuses(audit_app, lambda c: c.get(f"/v1/cases/{A}/story"))
    story_c = await statuses(audit_app, lambda c: c.get(f"/v1/cases/{C}/story"))
    payload_a = await statuses(audit_app, lambda c: c.get(f"/v1/cases/{A}/story", params={"payload": "true"}))
    trail_only = expect(403, auditor=200, admin=200)
    assert entries == trail_only and export == trail_only
    no_story = {"department_operator": 403, "bi_reader": 403}
    assert story_a == expect(200, **no_story)
    assert story_c == expect(404, city_operator=200, auditor=200, admin=200, **no_story)
    # Payloads carry the reporter's name and phone: not for the auditor's eyes.
    assert payload_a == expect(200, auditor=403, **no_story)


async def test_personal_data_in_the_trail_one_rule_everywhere_and_every_read_logged(
    audit_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """Stories refused auditors payloads while /v1/entries, /v1/entries/{seq} and the export handed
    them out (the reporter's name and phone)."""
    trail = ["auditor", "admin"]
    asked = {
        "entries": await statuses(
            audit_app, lambda c: c.get("/v1/entries", params={"payload": "true"}), trail
        ),
        "entry": await statuses(
            audit_app, lambda c: c.get("/v1/entries/0", params={"payload": "true"}), trail
        ),
        "export": await statuses(
            audit_app, lambda c: c.get("/v1/export/entries.jsonl", params={"payload": "true"}), trail
        ),
    }
    assert asked == {k: {"auditor": 403, "admin": 200} for k in ("entries", "entry", "export")}
    async with asgi(audit_app, "auditor") as c:
        shown = [
            (await c.get("/v1/entries")).text,
            (await c.get("/v1/entries/0")).text,
            (await c.get("/v1/export/entries.jsonl")).text,
        ]
        exported = [json.loads(line) for line in shown[2].splitlines()]
    for text_ in shown:
        assert "王建国" not in text_ and "13805271234" not in text_
    assert exported and all(e["payload"] is None and len(e["payload_sha256"]) == 64 for e in exported)
    caplog.set_level("INFO", logger="onegrid.personal_data")
    caplog.clear()
    async with asgi(audit_app, "admin") as c:
        one = await c.get("/v1/entries/0", params={"payload": "true"})
        big = await c.get("/v1/entries", params={"payload": "true", "limit": 10_000})
    assert one.json()["payload"] and big.status_code == 422
    reads = [r.getMessage() for r in caplog.records if r.name == "onegrid.personal_data"]
    assert reads == ["personal data read by staff:admin (admin): audit entry 0"]


async def test_a_forged_legacy_record_plants_nothing_in_another_cases_story(database_url: str) -> None:
    """Anyone who can produce to legacy.* writes any header: a record claiming to be C's case event,
    placed in street 321003009, once joined C's story and opened it to that street's operator."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit.store import TrailStore

    db = await fresh_schema(database_url)
    district, street, community, grid, _ = PLACES[C]
    own = case_event(
        "cases.v1",
        0,
        C,
        division={"district": district, "street": street, "community": community, "grid": grid},
    )
    forged = case_event(
        "legacy.party.v1",
        0,
        C,
        division={"district": "321003", "street": "321003009", "community": None, "grid": None},
        actor={"kind": "staff", "id": "staff:city-boss"},
    )
    await TrailWriter(db).append([own, forged])
    app = app_of(audit_router(TrailStore(db), Ed25519PrivateKey.generate().public_key()))
    try:
        story = await statuses(app, lambda c: c.get(f"/v1/cases/{C}/story"), ["street_operator", "admin"])
        async with asgi(app, "admin") as c:
            entries = (await c.get(f"/v1/cases/{C}/story")).json()["entries"]
            raw = (await c.get("/v1/entries", params={"topic": "legacy.party.v1"})).json()["entries"]
    finally:
        await db.close()
    assert story == {"street_operator": 404, "admin": 200}
    assert [e["topic"] for e in entries] == ["cases.v1"]
    [kept] = raw  # recorded all the same (it is evidence), as what it is: an opaque legacy record
    assert (kept["case_id"], kept["event_type"], kept["actor"]) == (None, "raw.legacy.party.v1", None)


# -- evaluation --------------------------------------------------------------------------------
@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def evaluation_app(database_url: str) -> Any:
    url = "postgresql+asyncpg://" + database_url.split("://", 1)[1]
    schema = f"evaluation_acl_{uuid.uuid4().hex[:8]}"
    await migrate(url, schema, EVALUATION_MIGRATIONS)
    engine = make_engine(url, schema, pool_size=2)
    yield app_of(evaluation_router(ReadModels(engine, EvaluationSettings().policy())))
    await engine.dispose()


async def test_figures_of_ones_own_scope_never_of_others(evaluation_app: FastAPI) -> None:
    own: dict[str, Any] = {}
    for role in ROLES:
        async with asgi(evaluation_app, role) as c:
            r = await c.get("/v1/metrics")
            own[role] = r.json()["scope"] if r.status_code == 200 else r.status_code
    assert own == {
        "grid_worker": "grid:321003009001003",
        "community_operator": 403,
        "street_operator": "street:321003009",
        "district_operator": "district:321003",
        "city_operator": "city",
        "department_operator": "department:chengguan",
        "auditor": "city",
        "admin": "city",
        "bi_reader": "city",
        "anonymous": 401,
    }
    neighbour = await statuses(
        evaluation_app, lambda c: c.get("/v1/metrics", params={"scope": "street:321003010"})
    )
    assert neighbour == expect(
        200, grid_worker=403, community_operator=403, street_operator=403, department_operator=403
    )


# -- Open311 -----------------------------------------------------------------------------------
async def test_open311_reads_public_posts_keyed(
    database_url: str, kafka_settings: KafkaSettings, topics: Any, tmp_path: Path
) -> None:
    url = "postgresql+asyncpg://" + database_url.split("://", 1)[1]
    schema = f"open311_acl_{uuid.uuid4().hex[:8]}"
    await migrate(url, schema, Path(open311.__file__).parent / "migrations")
    engine = make_engine(url, schema, pool_size=2)
    producer = make_producer(kafka_settings, client_id="acl-open311")
    await producer.start()
    keys_file = tmp_path / "keys.json"
    key = api_keys.add(keys_file, key_id="hotline", role=Role.OPEN311_CLIENT, divisions=[], departments=[])
    revoked = api_keys.add(
        keys_file, key_id="old-app", role=Role.OPEN311_CLIENT, divisions=[], departments=[]
    )
    api_keys.revoke(keys_file, "old-app")
    auth = AuthSettings(api_keys_file=keys_file)
    form = {"service_code": "001", "lat": "32.3942", "long": "119.4129", "description": "路灯不亮"}
    try:
        topic = await topics("legacy.open311")

        def app(public_reads: bool) -> FastAPI:
            settings = ApiSettings(topic=topic, public_reads=public_reads)
            r = open311_router(
                engine=engine, producer_getter=lambda: producer, crosswalk=Crosswalk.load(), settings=settings
            )
            return app_of(r, auth=auth)

        def post(extra: dict[str, str] | None = None, fields: dict[str, str] | None = None) -> Call:
            body = urlencode({**form, **(fields or {})}).encode()
            hdrs = {"content-type": "application/x-www-form-urlencoded", **(extra or {})}
            return lambda c: c.post("/open311/v2/requests.json", content=body, headers=hdrs)

        public, private = app(True), app(False)
        assert await statuses(public, lambda c: c.get("/open311/v2/services.json")) == expect(
            200, anonymous=200
        )
        assert await statuses(private, lambda c: c.get("/open311/v2/services.json")) == expect(200)
        posted = await statuses(public, post())
        assert posted == expect(403, admin=201, anonymous=401)
        assert (await statuses(public, post({"X-API-Key": key}), ["anonymous"])) == {"anonymous": 201}
        assert (await statuses(public, post(fields={"api_key": key}), ["anonymous"])) == {"anonymous": 201}
        assert (await statuses(public, post({"X-API-Key": revoked}), ["anonymous"])) == {"anonymous": 401}
        assert (await statuses(public, post(fields={"api_key": revoked}), ["anonymous"])) == {
            "anonymous": 401
        }
        # The key was checked: it is not published (Kafka and the audit trail keep records forever).
        spelled = urlencode(form).encode() + b"&api%5Fkey=" + key.encode()
        hdrs = {"content-type": "application/x-www-form-urlencoded"}
        async with asgi(public, "anonymous") as c:
            encoded = await c.post("/open311/v2/requests.json", content=spelled, headers=hdrs)
        assert encoded.status_code == 201
        published = await read_all(kafka_settings, topic, expect=4)
        assert len(published) == 4  # admin, X-API-Key, api_key field, api%5Fkey field
        assert all(key.encode() not in r.value for r in published)
        assert all(r.value.startswith(urlencode(form).encode()) for r in published)
    finally:
        await producer.stop()
        await engine.dispose()


async def test_open311_public_reads_are_coarse_limited_and_small(
    database_url: str, kafka_settings: KafkaSettings, topics: Any
) -> None:
    """Before: anyone read residents' descriptions with exact coordinates, 1,000 per query, unlimited."""
    from onegrid.ratelimit import RateLimit

    url = "postgresql+asyncpg://" + database_url.split("://", 1)[1]
    schema = f"open311_pub_{uuid.uuid4().hex[:8]}"
    await migrate(url, schema, Path(open311.__file__).parent / "migrations")
    engine = make_engine(url, schema, pool_size=2)
    producer = make_producer(kafka_settings, client_id="acl-open311-reads")
    await producer.start()
    try:
        settings = ApiSettings(
            topic=await topics("legacy.open311"),
            public_max_results=2,
            read_rate=RateLimit(rate_per_s=0.001, burst=6),
        )
        r = open311_router(
            engine=engine, producer_getter=lambda: producer, crosswalk=Crosswalk.load(), settings=settings
        )
        app = app_of(r)
        form = {"service_code": "001", "lat": "32.394217", "long": "119.412893", "description": "路灯不亮"}
        hdrs = {"content-type": "application/x-www-form-urlencoded"}
        async with asgi(app, "admin") as c:
            for _ in range(3):
                assert (
                    await c.post("/open311/v2/requests.json", content=urlencode(form).encode(), headers=hdrs)
                ).status_code == 201
            staff = (await c.get("/open311/v2/requests.json")).json()
        async with asgi(app, "anonymous") as c:
            public = (await c.get("/open311/v2/requests.json")).json()
            one = (await c.get(f"/open311/v2/requests/{staff[0]['service_request_id']}.json")).json()[0]
            answers = [(await c.get("/open311/v2/services.json")).status_code for _ in range(5)]
    finally:
        await producer.stop()
        await engine.dispose()
    assert len(staff) == 3 and (staff[0]["lat"], staff[0]["long"]) == (32.394217, 119.412893)
    assert len(public) == 2  # bulk reads need a key
    assert {(x["lat"], x["long"]) for x in [*public, one]} == {(32.394, 119.413)}
    assert answers[:2] == [200, 200] and answers[-1] == 429  # six GETs per address, then wait


# -- console -----------------------------------------------------------------------------------
TRACES = {A: "a" * 32, B: "b" * 32, C: "c" * 32}


def console_app(kafka_settings: KafkaSettings) -> tuple[FastAPI, Feeds, Upstream]:
    """The console's router on feeds whose board holds A, B and C, each with a trace of its own."""
    settings = ConsoleSettings(kafka=kafka_settings)
    feeds = Feeds(settings)
    spans = SpanStore(max_spans=100)
    for case_id, (district, street, community, grid, dept) in PLACES.items():
        division = {"district": district, "street": street, "community": community, "grid": grid}
        feeds.board.case_event(
            {
                "case_id": case_id,
                "event_type": "case.reported",
                "title": f"case {case_id[-1]}",
                "division": division,
                "location": {"point": {"lon": 119.4, "lat": 32.4}},
            }
        )
        feeds.board.lifecycle(
            {
                "case_id": case_id,
                "seq": 1,
                "to_state": "escalated",
                "action": "escalate",
                "at": "2026-05-04T01:00:00Z",
                "dimensions": {**division, "department": dept},
                "deadlines": {"acknowledge_by": "2026-05-04T02:00:00Z"},
            }
        )
        feeds.board.saw_trace(TRACES[case_id], case_id)
        spans.add([Span(TRACES[case_id], "1" * 16, None, "intake.process", "intake", "internal", 1, 2)])
    upstream = Upstream(audit_url="http://127.0.0.1:9", dispatch_url="http://127.0.0.1:9", timeout_s=1)
    app = app_of(
        console_router(
            watch=KafkaWatch(
                kafka_settings, topic_pattern=".+", group_pattern=".+", interval_s=1, window_s=5
            ),
            feeds=feeds,
            spans=spans,
            upstream=upstream,
            replayer=Replayer(kafka_settings, quarantine_topic="q", producer=lambda: None, book=feeds.book),
            tolerance=1e-4,
            replay_limiter=RateLimiter(100, 100),
        )
    )
    return app, feeds, upstream


async def test_console_for_operators_replay_for_command_centres(kafka_settings: KafkaSettings) -> None:
    app, _, upstream = console_app(kafka_settings)
    overview = await statuses(app, lambda c: c.get("/api/overview"))

    def replay(actor: str) -> Call:
        return lambda c: c.post("/api/quarantine/replay", json={"actor": actor, "reason": "none.such"})

    own_name: dict[str, int] = {}
    for role in ROLES:
        async with asgi(app, role) as c:
            body = {"actor": f"staff:{role}", "reason": "none.such"}
            own_name[role] = (await c.post("/api/quarantine/replay", json=body)).status_code
    someone_else = await statuses(app, replay("staff:boss"))
    await upstream.close()
    staff_only = {"grid_worker": 403, "department_operator": 403, "auditor": 403, "bi_reader": 403}
    assert overview == expect(200, **staff_only)
    # Permitted callers reach the replay (and learn nothing is quarantined for that reason), in their
    # own name only: the trail records who replayed, so the body may not name someone else.
    assert own_name == expect(403, city_operator=404, district_operator=404, admin=404)
    assert someone_else == expect(403, admin=404)


async def test_console_shows_each_operator_the_cases_of_its_scope_only(kafka_settings: KafkaSettings) -> None:
    app, _, upstream = console_app(kafka_settings)
    seen: dict[str, Any] = {}
    for role in ROLES:
        async with asgi(app, role) as c:
            o = await c.get("/api/overview")
            if o.status_code != 200:
                seen[role] = o.status_code
                continue
            sla = o.json()["sla"]
            cases = (await c.get("/api/map/cases")).json()["cases"]
            seen[role] = {
                "open": sla["open"],
                "alerts": sorted(a["case_id"][-1] for a in sla["alerts"]),
                "overdue": sorted(x["case_id"][-1] for x in sla["overdue"]),
                "map": sorted(x["case_id"][-1] for x in cases),
                "pages": {cid[-1]: (await c.get(f"/api/cases/{cid}")).status_code for cid in (A, B, C)},
                "traces": {
                    cid[-1]: (await c.get(f"/api/traces/{t}")).status_code for cid, t in TRACES.items()
                },
            }
    await upstream.close()

    def row(*visible: str) -> dict[str, Any]:
        return {
            "open": len(visible),
            "alerts": sorted(visible),
            "overdue": sorted(visible),
            "map": sorted(visible),
            "pages": {x: 200 if x in visible else 404 for x in "abc"},
            "traces": {x: 200 if x in visible else 404 for x in "abc"},
        }

    async with asgi(app, "city_operator") as c:
        junk = await c.get("/api/map/grids", params={"within": "x" * 5000})
    assert junk.status_code == 422  # every distinct `within` once had its own cache entry, forever
    assert seen == {
        "grid_worker": 403,
        "community_operator": row("a"),
        "street_operator": row("a"),
        "district_operator": row("a", "b"),
        "city_operator": row("a", "b", "c"),
        "department_operator": 403,
        "auditor": 403,
        "admin": row("a", "b", "c"),
        "bi_reader": 403,
        "anonymous": 401,
    }
