"""The Open311 GeoReport v2 endpoint on the real broker and PostgreSQL: the spec's shapes in XML and
JSON, POST publishing the body byte for byte before 201, errors, and the status following the case."""

from __future__ import annotations

import asyncio
import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from support.auth import ADMIN

import open311
from intake.domain.crosswalk import Crosswalk
from intake.domain.identity import case_id_for
from onegrid.auth import AuthSettings, install
from onegrid.db import make_engine, migrate
from onegrid.kafka.loop import ConsumerLoop, LoopConfig, make_consumer
from onegrid.kafka.producer import make_producer
from onegrid.settings import KafkaSettings
from open311.api import ApiSettings, open311_router
from open311.domain.status import CaseLink, decode_lifecycle
from open311.status import Open311StatusFollower
from open311.store import apply_changes, link_cases

from .conftest import TopicFactory, read_all

MIGRATIONS = Path(open311.__file__).parent / "migrations"
FORM = {"content-type": "application/x-www-form-urlencoded"}
PERSONAL = {
    "first_name": "小明",
    "last_name": "王二",
    "email": "wang.xiaoming@example.cn",
    "phone": "13812345678",
    "device_id": "device-5f1e",
    "account_id": "acct-8842",
}
REQUEST = {
    "service_code": "001",
    "lat": "32.3942",
    "long": "119.4129",
    "address_string": "文昌西路 88 号 <北门> & 东侧",
    "description": "路面塌陷，约一米宽 <script>alert(1)</script>",
    "media_url": "https://img.example.cn/p/1.jpg",
    **PERSONAL,
}
REQUEST_FIELDS = [
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
    "address", "address_id", "zipcode", "lat", "long", "media_url",
]  # fmt: skip


@dataclass
class Stack:
    engine: AsyncEngine
    producer: AIOKafkaProducer
    kafka: KafkaSettings
    crosswalk: Crosswalk


@dataclass
class Api:
    client: httpx.AsyncClient
    topic: str
    kafka: KafkaSettings


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def stack(database_url: str, kafka_settings: KafkaSettings) -> AsyncIterator[Stack]:
    url = "postgresql+asyncpg://" + database_url.split("://", 1)[1]
    schema = f"open311_t_{uuid.uuid4().hex[:10]}"
    await migrate(url, schema, MIGRATIONS)
    engine = make_engine(url, schema, pool_size=2)
    producer = make_producer(kafka_settings, client_id="open311-api-test")
    await producer.start()
    try:
        yield Stack(engine, producer, kafka_settings, Crosswalk.load())
    finally:
        await producer.stop()
        await engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def api(stack: Stack, topics: TopicFactory) -> AsyncIterator[Api]:
    """A fresh app per test, publishing to a topic of its own."""
    topic = await topics("legacy.open311", partitions=3)
    app = FastAPI()
    install(app, AuthSettings(), environment="test")
    app.include_router(
        open311_router(
            engine=stack.engine,
            producer_getter=lambda: stack.producer,
            crosswalk=stack.crosswalk,
            settings=ApiSettings(topic=topic),
        )
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://open311", headers=ADMIN
    ) as client:
        yield Api(client, topic, stack.kafka)


def xml_of(response: httpx.Response) -> ET.Element:
    assert response.headers["content-type"].startswith("text/xml")
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(response.content)


def error_of(response: httpx.Response) -> tuple[int, str]:
    root = xml_of(response)
    assert root.tag == "errors" and [e.tag for e in root] == ["error"]
    assert [c.tag for c in root[0]] == ["code", "description"]
    return int(root[0].findtext("code") or 0), root[0].findtext("description") or ""


async def post(api: Api, fields: dict[str, str], suffix: str = ".json") -> httpx.Response:
    return await api.client.post(
        f"/open311/v2/requests{suffix}", content=urlencode(fields).encode(), headers=FORM
    )


async def test_get_services_in_xml_and_json(api: Api, stack: Stack) -> None:
    codes = [s.service_code for s in stack.crosswalk.open311_services()]
    default = await api.client.get("/open311/v2/services")
    suffixed = await api.client.get("/open311/v2/services.xml")
    assert default.status_code == suffixed.status_code == 200 and default.content == suffixed.content
    root = xml_of(default)
    assert root.tag == "services" and {e.tag for e in root} == {"service"}
    assert [e.findtext("service_code") for e in root] == codes
    fields = ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"]
    assert [c.tag for c in root[0]] == fields
    assert (root[0].findtext("service_name"), root[0].findtext("metadata")) == ("Pothole", "false")
    assert root[0].findtext("keywords") == "pothole, road, 坑洼"

    as_json = await api.client.get("/open311/v2/services.json")
    assert as_json.headers["content-type"].startswith("application/json")
    listed = as_json.json()
    assert [s["service_code"] for s in listed] == codes and list(listed[0]) == fields
    assert listed[0]["metadata"] is False and listed[0]["group"] == "Streets"


async def test_service_definitions_exist_only_for_services_with_metadata(api: Api) -> None:
    no_metadata = await api.client.get("/open311/v2/services/001.xml")
    assert no_metadata.status_code == 404 and error_of(no_metadata)[0] == 404
    unknown = await api.client.get("/open311/v2/services/999.json")
    assert unknown.status_code == 404
    assert unknown.json()[0]["code"] == 404 and "999" in unknown.json()[0]["description"]


async def test_post_publishes_the_body_byte_for_byte_then_get_round_trips(api: Api) -> None:
    body = urlencode(REQUEST).encode()
    created = await api.client.post("/open311/v2/requests.json", content=body, headers=FORM)
    assert created.status_code == 201, created.text
    (answer,) = created.json()
    assert list(answer) == ["service_request_id", "service_notice", "account_id"]
    request_id = answer["service_request_id"]
    assert uuid.UUID(request_id).version == 4 and answer["account_id"] == "acct-8842"

    (record,) = await read_all(api.kafka, api.topic, expect=1)
    assert record.value == body and record.key == request_id.encode()
    headers = {k: v.decode() for k, v in record.headers}
    assert headers["open311_service_request_id"] == request_id
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    received = datetime.fromisoformat(headers["open311_received_at"])
    assert headers["open311_received_at"].endswith("Z") and abs(datetime.now(UTC) - received) < timedelta(
        hours=1
    )

    as_xml = await api.client.get(f"/open311/v2/requests/{request_id}.xml")
    as_default = await api.client.get(f"/open311/v2/requests/{request_id}")
    assert as_xml.status_code == 200 and as_xml.content == as_default.content
    root = xml_of(as_xml)
    assert root.tag == "service_requests" and [e.tag for e in root] == ["request"]
    request = root[0]
    assert [c.tag for c in request] == REQUEST_FIELDS
    assert request.findtext("service_request_id") == request_id
    assert (request.findtext("status"), request.findtext("service_name")) == ("open", "Pothole")
    assert request.findtext("address") == REQUEST["address_string"]  # escaped by the XML writer, read back
    assert request.findtext("description") == REQUEST["description"]
    assert (float(request.findtext("lat") or 0), float(request.findtext("long") or 0)) == (32.3942, 119.4129)
    requested = datetime.fromisoformat(request.findtext("requested_datetime") or "")
    assert requested.utcoffset() == timedelta(hours=8) and abs(requested - received) < timedelta(seconds=1)

    as_json = await api.client.get(f"/open311/v2/requests/{request_id}.json")
    (item,) = as_json.json()
    assert list(item) == REQUEST_FIELDS
    assert item["service_request_id"] == request_id and item["lat"] == 32.3942 and item["zipcode"] is None
    assert item["requested_datetime"] == request.findtext("requested_datetime")
    assert item["media_url"] == request.findtext("media_url") == REQUEST["media_url"]

    for response in (as_xml, as_json, await api.client.get("/open311/v2/requests.json")):
        for value in PERSONAL.values():
            assert value not in response.text, f"personal field {value!r} leaked"


async def test_post_answers_xml_by_default(api: Api) -> None:
    created = await post(api, {"service_code": "003", "address_id": "A-17"}, suffix="")
    assert created.status_code == 201
    root = xml_of(created)
    assert root.tag == "service_requests" and [c.tag for c in root[0]] == [
        "service_request_id",
        "service_notice",
        "account_id",
    ]
    assert root[0].find("account_id") is not None  # present and empty, not omitted
    assert root[0].findtext("account_id") == ""


async def test_get_requests_filters(api: Api) -> None:
    ids = {}
    for code in ("005", "006", "006"):
        created = await post(api, {"service_code": code, "address_string": f"test {code}"})
        ids.setdefault(code, []).append(created.json()[0]["service_request_id"])
    by_code = (await api.client.get("/open311/v2/requests.json", params={"service_code": "006"})).json()
    assert {r["service_request_id"] for r in by_code} >= set(ids["006"])
    assert {r["service_code"] for r in by_code} == {"006"}
    listed = ",".join([ids["005"][0], ids["006"][1], "not-an-id", str(uuid.uuid4())])
    by_id = (await api.client.get("/open311/v2/requests.json", params={"service_request_id": listed})).json()
    assert {r["service_request_id"] for r in by_id} == {ids["005"][0], ids["006"][1]}
    closed = (await api.client.get("/open311/v2/requests.json", params={"status": "closed"})).json()
    assert not {r["service_request_id"] for r in closed} & {i for v in ids.values() for i in v}
    past = {"start_date": "2020-01-01T00:00:00+08:00", "end_date": "2020-03-01T00:00:00+08:00"}
    assert (await api.client.get("/open311/v2/requests.json", params=past)).json() == []
    # A "+" left unencoded in the query arrives as a space; the offset is still understood.
    raw_plus = await api.client.get("/open311/v2/requests.json?start_date=2020-01-01T00:00:00+08:00")
    assert raw_plus.status_code == 200


async def test_errors_are_the_specs_documents_with_the_right_status(api: Api) -> None:
    cases: list[tuple[dict[str, str], int, str]] = [
        ({"lat": "32.1", "long": "119.1"}, 400, "service_code"),
        ({"service_code": "001", "description": "no location"}, 400, "location"),
        ({"service_code": "001", "lat": "95", "long": "119"}, 400, "lat"),
        ({"service_code": "001", "lat": "32", "long": "-181"}, 400, "long"),
        ({"service_code": "001", "address_id": "A", "description": "长" * 4001}, 400, "4000"),
        ({"service_code": "999", "address_id": "A"}, 404, "999"),
    ]
    for fields, status, mentioned in cases:
        response = await post(api, fields, suffix=".xml")
        assert response.status_code == status, (fields, response.text)
        code, description = error_of(response)
        assert code == status and mentioned in description, description
    as_json = await post(api, {"service_code": "001"})
    assert as_json.status_code == 400 and list(as_json.json()[0]) == ["code", "description"]

    huge = await api.client.post(
        "/open311/v2/requests", content=b"service_code=001&d=" + b"x" * 70_000, headers=FORM
    )
    assert huge.status_code == 413 and error_of(huge)[0] == 413
    wrong_type = await api.client.post("/open311/v2/requests", json={"service_code": "001"})
    assert wrong_type.status_code == 415 and error_of(wrong_type)[0] == 415
    for path, status in [
        (f"/open311/v2/requests/{uuid.uuid4()}.xml", 404),
        ("/open311/v2/requests/not-a-uuid", 404),
        ("/open311/v2/services.yaml", 404),
        ("/open311/v2/requests?status=pending", 400),
        ("/open311/v2/requests?start_date=yesterday", 400),
        ("/open311/v2/requests?start_date=2026-01-01T00:00:00", 400),  # no offset
        ("/open311/v2/requests?start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z", 400),
        ("/open311/v2/requests?start_date=2026-02-01T00:00:00Z&end_date=2026-01-01T00:00:00Z", 400),
    ]:
        response = await api.client.get(path)
        assert response.status_code == status and error_of(response)[0] == status, path
    # Nothing refused was published.
    assert await read_all(api.kafka, api.topic, timeout_s=3) == []


async def test_without_a_producer_the_request_is_refused_503_and_not_recorded(stack: Stack) -> None:
    app = FastAPI()
    install(app, AuthSettings(), environment="test")
    app.include_router(
        open311_router(
            engine=stack.engine,
            producer_getter=lambda: None,
            crosswalk=stack.crosswalk,
            settings=ApiSettings(),
        )
    )
    async with stack.engine.connect() as conn:
        before = (await conn.execute(text("SELECT count(*) FROM open311_request"))).scalar_one()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://open311", headers=ADMIN
    ) as client:
        response = await client.post(
            "/open311/v2/requests", content=urlencode(REQUEST).encode(), headers=FORM
        )
    assert response.status_code == 503 and error_of(response)[0] == 503
    async with stack.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM open311_request"))).scalar_one() == before


def lifecycle(case_id: uuid.UUID, seq: int, to_state: str, **extra: object) -> bytes:
    event = {
        "event_id": str(uuid.uuid4()),
        "case_id": str(case_id),
        "seq": seq,
        "from_state": None,
        "to_state": to_state,
        "action": "close",
        "actor": {"kind": "system", "id": "dispatch", "display": "系统"},
        "reason": None,
        "at": f"2026-03-0{seq}T02:00:00Z",
        "deadlines": {"acknowledge_by": None, "resolve_by": "2026-03-09T02:00:00Z"},
        "dimensions": {"network": "open311", "department": "hj-urban-mgmt", "hops": 1},
        **extra,
    }
    return json.dumps(event).encode()


async def status_of(api: Api, request_id: str) -> dict[str, object]:
    (item,) = (await api.client.get(f"/open311/v2/requests/{request_id}.json")).json()
    return item  # type: ignore[no-any-return]


async def test_a_lifecycle_event_closes_the_request_and_stale_ones_are_ignored(
    api: Api, stack: Stack, topics: TopicFactory
) -> None:
    request_id = (await post(api, REQUEST)).json()[0]["service_request_id"]
    case_id = case_id_for("open311", request_id)
    lifecycle_topic, dlq = await topics("case.lifecycle", partitions=2), await topics("open311.dlq")
    follower = Open311StatusFollower(engine=stack.engine)
    loop = ConsumerLoop(
        consumer=make_consumer(stack.kafka, group_id=f"g-{lifecycle_topic}", client_id="open311-status-test"),
        handler=follower.apply_lifecycle,
        producer=stack.producer,
        config=LoopConfig(
            group_id=f"g-{lifecycle_topic}", topics=(lifecycle_topic,), service="open311", dlq_topic=dlq
        ),
    )
    running = asyncio.create_task(loop.run())
    try:
        other_case = uuid.uuid4()
        for value in [
            lifecycle(case_id, 1, "registered"),
            b"{not json",
            lifecycle(other_case, 2, "closed"),
            lifecycle(case_id, 2, "dispatched"),
            lifecycle(case_id, 3, "closed"),
        ]:
            await stack.producer.send_and_wait(lifecycle_topic, value, key=str(case_id).encode())
        item = await status_of(api, request_id)
        for _ in range(120):
            if item["status"] == "closed":
                break
            await asyncio.sleep(0.25)
            item = await status_of(api, request_id)
        assert item["status"] == "closed" and "结案" in str(item["status_notes"])
        assert item["updated_datetime"] == "2026-03-03T10:00:00+08:00"
        assert item["expected_datetime"] == "2026-03-09T10:00:00+08:00"
        assert item["agency_responsible"] == "hj-urban-mgmt"
        (dead,) = await read_all(stack.kafka, dlq, expect=1)
        assert dead.value == b"{not json" and dict(dead.headers)["dlq_reason"] == b"lifecycle.invalid"
    finally:
        loop.stop()
        await running

    closed = await api.client.get("/open311/v2/requests.json", params={"status": "closed"})
    assert request_id in {r["service_request_id"] for r in closed.json()}
    late = FakeRecord(lifecycle(case_id, 2, "in_progress"))
    assert (
        await follower.apply_lifecycle([late, FakeRecord(lifecycle(case_id, 3, "closed"))])
    ).dead_letters == []
    assert (await status_of(api, request_id))[
        "status"
    ] == "closed"  # a stale or replayed event changes nothing
    await follower.apply_lifecycle([FakeRecord(lifecycle(case_id, 4, "reopened", reason="verify.complaint"))])
    reopened = await status_of(api, request_id)
    assert reopened["status"] == "open" and "verify.complaint" in str(reopened["status_notes"])
    await follower.apply_lifecycle([FakeRecord(lifecycle(case_id, 5, "merged"))])
    assert (await status_of(api, request_id))["status"] == "closed"


async def test_a_request_linked_into_another_case_follows_that_case(api: Api, stack: Stack) -> None:
    first = (await post(api, REQUEST)).json()[0]["service_request_id"]
    second = (await post(api, {**REQUEST, "description": "same pothole, seen again"})).json()[0][
        "service_request_id"
    ]
    own_case = case_id_for("open311", first)
    follower = Open311StatusFollower(engine=stack.engine)
    # intake opened a case for the first request and linked the second into it (same problem, nearby)
    opened = {
        "event_type": "case.reported",
        "case_id": str(own_case),
        "source": {"network": "open311", "source_id": first},
    }
    linked = {
        "event_type": "case.linked",
        "case_id": str(own_case),
        "source": {"network": "open311", "source_id": second},
    }
    other = {
        "event_type": "case.reported",
        "case_id": str(uuid.uuid4()),
        "source": {"network": "party", "source_id": "MQRJ1"},
    }
    batch = [FakeRecord(json.dumps(e).encode(), topic="cases.v1") for e in (opened, linked, other)]
    outcome = await follower.apply_cases([*batch, FakeRecord(b"not json", topic="cases.v1")])
    assert [d.reason for d in outcome.dead_letters] == ["cases.invalid"]
    await follower.apply_cases(batch)  # a replay changes nothing
    await follower.apply_lifecycle([FakeRecord(lifecycle(own_case, 1, "dispatched"))])
    assert (await status_of(api, second))["status_notes"] == (await status_of(api, first))["status_notes"]
    await follower.apply_lifecycle([FakeRecord(lifecycle(own_case, 2, "closed"))])
    assert (await status_of(api, first))["status"] == (await status_of(api, second))["status"] == "closed"


async def test_a_request_linked_into_a_case_already_under_way_shows_that_cases_status(
    api: Api, stack: Stack
) -> None:
    """Issue 13 item 11: the case a request joins may have moved on before the link is read (another
    network reported it, dispatch took it up); the request shows where that case stands now, not
    `open` until the case's next event, which may never come."""
    first = (await post(api, REQUEST)).json()[0]["service_request_id"]
    second = (await post(api, {**REQUEST, "description": "seen again"})).json()[0]["service_request_id"]
    third = (await post(api, {**REQUEST, "description": "seen a third time"})).json()[0]["service_request_id"]
    under_way, closed = uuid.uuid4(), uuid.uuid4()
    follower = Open311StatusFollower(engine=stack.engine)
    # Both cases were opened by other networks; their lifecycle is read before the links.
    await follower.apply_lifecycle(
        [
            FakeRecord(lifecycle(under_way, 1, "registered")),
            FakeRecord(lifecycle(under_way, 2, "dispatched")),
            FakeRecord(lifecycle(closed, 3, "closed")),
        ]
    )

    def linked(request_id: str, case_id: uuid.UUID) -> FakeRecord:
        event = {
            "event_type": "case.linked",
            "case_id": str(case_id),
            "source": {"network": "open311", "source_id": request_id},
        }
        return FakeRecord(json.dumps(event).encode(), topic="cases.v1")

    await follower.apply_cases([linked(first, under_way), linked(second, under_way), linked(third, closed)])
    for request_id in (first, second):
        item = await status_of(api, request_id)
        assert item["status"] == "open" and "已派遣" in str(item["status_notes"]), item
        assert item["agency_responsible"] == "hj-urban-mgmt"
        assert item["updated_datetime"] == "2026-03-02T10:00:00+08:00"
        assert item["expected_datetime"] == "2026-03-09T10:00:00+08:00"
    assert (await status_of(api, third))["status"] == "closed"
    closed_list = await api.client.get("/open311/v2/requests.json", params={"status": "closed"})
    assert third in {r["service_request_id"] for r in closed_list.json()}

    # Later events of the case still move the requests on; a replayed link moves nothing back.
    await follower.apply_lifecycle([FakeRecord(lifecycle(under_way, 3, "closed"))])
    await follower.apply_cases([linked(first, under_way)])
    assert (await status_of(api, first))["status"] == (await status_of(api, second))["status"] == "closed"


async def _hold_while(
    first: Callable[[AsyncConnection], Awaitable[None]],
    second: Callable[[], Awaitable[object]],
    database_url: str,
    engine: AsyncEngine,
) -> None:
    """`first` in a transaction left open until `second`, started meanwhile, waits on a lock (or has
    finished without waiting); then `first` commits and `second` is awaited."""
    url = "postgresql+asyncpg://" + database_url.split("://", 1)[1]
    watcher = make_engine(url, "public", pool_size=1)
    try:
        async with engine.connect() as conn:
            tx = await conn.begin()
            await first(conn)
            running = asyncio.create_task(second())
            while not running.done():
                async with watcher.connect() as w:
                    query = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                    if (await w.execute(query)).scalar_one():
                        break
                await asyncio.sleep(0.05)
            await tx.commit()
        await running
    finally:
        await watcher.dispose()


@pytest.mark.parametrize("link_first", [False, True], ids=["event-then-link", "link-then-event"])
async def test_a_link_and_its_cases_next_event_in_concurrent_transactions_miss_neither(
    api: Api, stack: Stack, database_url: str, link_first: bool
) -> None:
    """The link (cases.v1) and the case's lifecycle are handled by two loops at once, in either
    order: whichever transaction commits second must see the other's work, else the request stays
    one event behind until the case's next event, which may never come."""
    follower = Open311StatusFollower(engine=stack.engine)
    request_id = (await post(api, REQUEST)).json()[0]["service_request_id"]
    case_id = uuid.uuid4()
    await follower.apply_lifecycle([FakeRecord(lifecycle(case_id, 1, "registered"))])
    event = decode_lifecycle(lifecycle(case_id, 2, "dispatched"))
    link = CaseLink(service_request_id=uuid.UUID(request_id), case_id=case_id)

    async def apply_event(conn: AsyncConnection) -> None:
        await apply_changes(conn, [event])

    async def apply_link(conn: AsyncConnection) -> None:
        await link_cases(conn, [link])

    first, second = (apply_link, apply_event) if link_first else (apply_event, apply_link)

    async def second_in_own_transaction() -> None:
        async with stack.engine.begin() as conn:
            await second(conn)

    await _hold_while(first, second_in_own_transaction, database_url, stack.engine)
    item = await status_of(api, request_id)
    assert "已派遣" in str(item["status_notes"]), item


@dataclass(frozen=True)
class FakeRecord:
    value: bytes
    topic: str = "case.lifecycle.v1"
    partition: int = 0
    offset: int = 0
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: int = 0
