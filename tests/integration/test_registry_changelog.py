"""The seeded registry and its changelog on real PostgreSQL and Kafka: a view rebuilt from
grid.registry.v1 alone equals the database (deletes included), every record on the topic follows the
contract, the seed is idempotent, and the view's GridIndex agrees with a brute-force point-in-polygon
check on 100,000 random points."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
import shapely
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from shapely.geometry import shape

from grid_registry.domain.records import KINDS
from grid_registry.domain.seed import seed_records
from onegrid.envelope import CloudEvent
from onegrid.settings import KafkaSettings
from registry_client import RegistryView

from .conftest import TopicFactory, read_all
from .test_registry_harness import Running, running_registry

pytestmark = pytest.mark.asyncio(loop_scope="session")
SCHEMAS = Path(__file__).resolve().parents[2] / "contracts" / "schemas"
CONFORMANCE_MNS = ("010000A8900016F000169DC0", "JLYP01_AIR01_0001", "Z13401000010301", "LD130133000015")


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def seeded(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Running]:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    topic = await TopicFactory(kafka)("grid.registry", compacted=True)
    async with running_registry(database_url, kafka, topic, seed=True) as running:
        await running.caught_up(timeout_s=90)
        yield running


async def database_records(running: Running) -> dict[str, dict[str, dict]]:
    store = running.service.registry.store
    return {kind: {r["code"]: r for r in await store.records(kind)} for kind in KINDS}


def rebuilt(records: list) -> RegistryView:
    view = RegistryView()
    for r in records:
        view.apply(r.key.decode(), r.value)
    return view


def validator() -> Draft202012Validator:
    schemas = [json.loads(p.read_text(encoding="utf-8")) for p in SCHEMAS.glob("*.json")]
    registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas)
    record = next(s for s in schemas if s["$id"].endswith("registry-record.v1.json"))
    return Draft202012Validator(record, registry=registry)


async def test_a_view_rebuilt_from_the_topic_alone_equals_the_database(seeded: Running) -> None:
    c = seeded.client
    # a change and a delete after the seed, so that tombstones are part of what is replayed
    station = (await c.get("/v1/records/station/JLYP01_AIR01_0001")).json()
    station["name"] = "邗江空气自动监测站1号（迁址）"
    assert (await c.put("/v1/records/station/JLYP01_AIR01_0001", json=station)).status_code == 200
    assert (await c.delete("/v1/records/station/321003W0000010")).status_code == 204
    await seeded.caught_up()

    records = await read_all(seeded.service.wiring.settings.kafka, seeded.topic, timeout_s=60)
    view = rebuilt(records)
    db = await database_records(seeded)
    assert {k: v for k, v in view.records.items() if v} == {k: v for k, v in db.items() if v}
    assert view.get("station", "321003W0000010") is None
    assert view.get("station", "JLYP01_AIR01_0001")["revision"] == 2  # type: ignore[index]
    assert len(db["grid"]) > 3000 and len(db["division"]) == 1543
    # the service's own live view followed the same changes
    assert seeded.service.view.records == view.records


async def test_every_changelog_record_follows_the_contract(seeded: Running) -> None:
    records = await read_all(seeded.service.wiring.settings.kafka, seeded.topic, timeout_s=60)
    check = validator()
    tombstones = 0
    for r in records:
        kind, _, code = r.key.decode().partition(":")
        assert kind in KINDS and code
        event = CloudEvent.from_headers(r.headers)
        assert event is not None and event.subject == r.key.decode()
        if r.value is None:
            tombstones += 1
            assert event.type == "cn.onegrid.registry.record_deleted.v1"
            continue
        body = json.loads(r.value)
        errors = list(check.iter_errors(body))
        assert not errors, (r.key, errors[0].message)
        assert (body["kind"], body["code"]) == (kind, code)
        assert event.id == f"{kind}:{code}:{body['revision']}"
    assert tombstones >= 1


async def test_the_seed_is_complete_and_seeding_again_changes_nothing(seeded: Running) -> None:
    db = await database_records(seeded)
    for mn in CONFORMANCE_MNS:
        assert mn in db["station"], mn
    assert {s["system_code"] for s in db["station"].values()} == {"22", "32"}
    assert {
        "chengguan",
        "shengtai",
        "yingji",
        "gongan",
        "shichang",
        "zhujian",
        "shuiwu",
        "jiedao_zhifa",
    } <= set(db["department"])
    c = seeded.client
    station = (await c.get("/v1/records/station/Z13401000010301")).json()
    assert (
        await c.put("/v1/records/station/Z13401000010301", json={**station, "active": False})
    ).status_code == 200
    assert (await c.delete("/v1/records/station/321003A0000010")).status_code == 204
    records = seed_records(seeded.service.settings.geometry_seed)
    # the seed restores what was changed since, and only that
    assert await seeded.service.registry.seed(records) >= 2
    await seeded.caught_up()
    before = seeded.service.relay.published
    assert await seeded.service.registry.seed(records) == 0
    await seeded.caught_up()
    assert seeded.service.relay.published == before
    restored = await database_records(seeded)
    assert restored["station"]["Z13401000010301"]["active"] is True
    assert restored["station"]["Z13401000010301"]["revision"] == station["revision"] + 2
    assert "321003A0000010" in restored["station"]


async def test_point_lookups_agree_with_brute_force_on_100000_random_points(seeded: Running) -> None:
    view = seeded.service.view
    index = view.grid_index()
    assert index is view.grid_index()  # no change, no rebuild
    district = shape(view.get("division", "321003")["area"])  # type: ignore[index]
    minx, miny, maxx, maxy = district.bounds
    rng = np.random.default_rng(20260301)
    n = 100_000
    xs, ys = rng.uniform(minx - 0.01, maxx + 0.01, n), rng.uniform(miny - 0.01, maxy + 0.01, n)

    found = index.lookup_many(xs, ys).codes
    # brute force: every cell of each level tested against every point in its bounding box
    for level, kind in (
        ("district", "division"),
        ("street", "division"),
        ("community", "division"),
        ("grid", "grid"),
        ("micro_grid", "grid"),
    ):
        expected = np.full(n, "", dtype="U18")
        hits = np.zeros(n, dtype=np.int32)
        for code, record in view.all(kind).items():
            if record.get("level") != level or record.get("area") is None:
                continue
            geometry = shape(record["area"])
            bx0, by0, bx1, by1 = geometry.bounds
            near = np.flatnonzero((xs >= bx0) & (xs <= bx1) & (ys >= by0) & (ys <= by1))
            inside = near[shapely.contains_xy(geometry, xs[near], ys[near])]
            expected[inside] = code
            hits[inside] += 1
        assert hits.max() <= 1, f"{level}: a point inside two siblings"
        mismatched = np.flatnonzero(found[level] != expected)
        assert mismatched.size == 0, (
            level,
            [(xs[i], ys[i], found[level][i], expected[i]) for i in mismatched[:3]],
        )
    assert (found["micro_grid"] != "").sum() > n // 3  # the check is not vacuous
