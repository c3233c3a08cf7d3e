"""The registry's REST API on real PostgreSQL and Kafka: invalid input is refused with a 4xx naming the
problem, ETags guard reads and writes, "as of" answers what was in force, and changes reach the view."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from shapely.geometry import box, mapping

from onegrid.settings import KafkaSettings

from .test_registry_harness import Running, running_registry

pytestmark = pytest.mark.asyncio(loop_scope="session")

CITY, DISTRICT, STREET, COMMUNITY = "321000", "321003", "321003009", "321003009001"
G1, G2 = "321003009001001", "321003009001002"


def area(minx: float, miny: float, maxx: float, maxy: float) -> dict[str, Any]:
    return mapping(box(minx, miny, maxx, maxy))  # type: ignore[no-any-return]


def division(code: str, level: str, parent: str | None, geometry: dict[str, Any] | None) -> dict[str, Any]:
    return {"name": f"单位{code}", "active": True, "level": level, "parent_code": parent, "area": geometry}


def grid(
    code: str, geometry: dict[str, Any], *, level: str = "grid", community: str = COMMUNITY
) -> dict[str, Any]:
    return {
        "name": f"网格{code}",
        "active": True,
        "level": level,
        "community_code": community,
        "parent_grid_code": code[:15] if level == "micro_grid" else None,
        "special_kind": "school" if level == "special" else None,
        "area": geometry,
    }


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def registry(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Running]:
    from .conftest import TopicFactory

    topic = await TopicFactory(KafkaSettings(bootstrap_servers=kafka_bootstrap))(
        "grid.registry", compacted=True
    )
    async with running_registry(
        database_url, KafkaSettings(bootstrap_servers=kafka_bootstrap), topic
    ) as running:
        c = running.client
        for code, body in [
            (CITY, division(CITY, "city", None, None)),
            (DISTRICT, division(DISTRICT, "district", CITY, area(119.2, 32.3, 119.5, 32.55))),
            (STREET, division(STREET, "street", DISTRICT, area(119.40, 32.38, 119.44, 32.42))),
            (COMMUNITY, division(COMMUNITY, "community", STREET, area(119.40, 32.38, 119.42, 32.40))),
        ]:
            assert (await c.put(f"/v1/records/division/{code}", json=body)).status_code == 200
        for code, geometry in [
            (G1, area(119.40, 32.38, 119.41, 32.39)),
            (G2, area(119.41, 32.38, 119.42, 32.39)),
        ]:
            assert (await c.put(f"/v1/records/grid/{code}", json=grid(code, geometry))).status_code == 200
        yield running


def refused(response: Any, status: int, reason: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == reason, body
    return str(body["detail"])


async def test_a_self_intersecting_polygon_is_refused(registry: Running) -> None:
    bowtie = {
        "type": "Polygon",
        "coordinates": [
            [[119.40, 32.39], [119.41, 32.40], [119.41, 32.39], [119.40, 32.40], [119.40, 32.39]]
        ],
    }
    r = await registry.client.put("/v1/records/grid/321003009001003", json=grid("321003009001003", bowtie))
    assert "self-intersection" in refused(r, 422, "geometry.self_intersection").lower()


async def test_an_open_ring_is_refused(registry: Running) -> None:
    ring = {
        "type": "Polygon",
        "coordinates": [[[119.40, 32.39], [119.41, 32.39], [119.41, 32.40], [119.40, 32.40]]],
    }
    r = await registry.client.put("/v1/records/grid/321003009001003", json=grid("321003009001003", ring))
    refused(r, 422, "geometry.not_closed")


async def test_an_overlap_with_a_sibling_is_refused_naming_the_sibling(registry: Running) -> None:
    overlapping = area(119.405, 32.385, 119.415, 32.395)
    r = await registry.client.put(
        "/v1/records/grid/321003009001003", json=grid("321003009001003", overlapping)
    )
    detail = refused(r, 409, "geometry.overlaps_sibling")
    assert G1 in detail


async def test_an_area_outside_the_parent_is_refused(registry: Running) -> None:
    r = await registry.client.put(
        "/v1/records/grid/321003009001003", json=grid("321003009001003", area(119.43, 32.38, 119.44, 32.39))
    )
    assert COMMUNITY in refused(r, 422, "geometry.outside_parent")


async def test_an_unknown_parent_is_refused(registry: Running) -> None:
    code = "321003009002001"
    r = await registry.client.put(
        f"/v1/records/grid/{code}",
        json=grid(code, area(119.40, 32.39, 119.41, 32.40), community="321003009002"),
    )
    assert "321003009002" in refused(r, 422, "reference.unknown_parent")
    r = await registry.client.put(
        "/v1/records/division/321003010", json=division("321003010", "street", "321099", None)
    )
    refused(r, 422, "division_code.parent_mismatch")
    r = await registry.client.put(
        "/v1/records/division/321099001", json=division("321099001", "street", "321099", None)
    )
    refused(r, 422, "reference.unknown_parent")


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("32100300900100A", "grid_code.not_digits"),
        ("3210030090010011", "grid_code.bad_length"),
        ("321003009001000", "grid_code.zero_part"),
        ("321000009001001", "grid_code.bad_district"),
    ],
)
async def test_a_malformed_grid_code_is_refused(registry: Running, code: str, reason: str) -> None:
    r = await registry.client.put(
        f"/v1/records/grid/{code}", json=grid(code, area(119.40, 32.39, 119.41, 32.40))
    )
    assert code in refused(r, 422, reason)


async def test_a_record_off_the_contract_is_refused_naming_the_field(registry: Running) -> None:
    body = {"name": "城管", "active": True, "tier": "planet", "division_code": DISTRICT, "parent_code": None}
    r = await registry.client.put("/v1/records/department/chengguan", json={**body, "category_codes": []})
    assert "tier" in refused(r, 422, "schema.invalid")
    r = await registry.client.put(
        "/v1/records/department/ChengGuan", json={**body, "tier": "district", "category_codes": []}
    )
    refused(r, 422, "department_code.malformed")
    r = await registry.client.put(
        "/v1/records/department/chengguan",
        json={**body, "tier": "district", "category_codes": ["city.nonsense"]},
    )
    assert "city.nonsense" in refused(r, 422, "reference.unknown_category")


async def test_etags_make_reads_conditional_and_writes_safe(registry: Running) -> None:
    c = registry.client
    code = "321003009001004"
    first = await c.put(f"/v1/records/grid/{code}", json=grid(code, area(119.40, 32.39, 119.41, 32.40)))
    assert first.status_code == 200 and first.headers["ETag"] == '"1"'
    same = await c.put(f"/v1/records/grid/{code}", json=grid(code, area(119.40, 32.39, 119.41, 32.40)))
    assert same.json()["revision"] == 1  # unchanged content is no new revision
    assert (await c.get(f"/v1/records/grid/{code}", headers={"If-None-Match": '"1"'})).status_code == 304
    renamed = {**grid(code, area(119.40, 32.39, 119.41, 32.40)), "name": "新名字"}
    assert (
        await c.put(f"/v1/records/grid/{code}", json=renamed, headers={"If-Match": '"1"'})
    ).status_code == 200
    stale = await c.put(
        f"/v1/records/grid/{code}",
        json=grid(code, area(119.40, 32.39, 119.41, 32.40)),
        headers={"If-Match": '"1"'},
    )
    refused(stale, 412, "record.revision_mismatch")
    refused(
        await c.delete(f"/v1/records/grid/{code}", headers={"If-Match": '"1"'}),
        412,
        "record.revision_mismatch",
    )
    await registry.wait_for("grid", code, 2)
    assert (await c.delete(f"/v1/records/grid/{code}", headers={"If-Match": '"2"'})).status_code == 204
    await registry.wait_for("grid", code, None)
    refused(await c.get(f"/v1/records/grid/{code}"), 404, "record.not_found")
    history = (await c.get(f"/v1/history/grid/{code}")).json()
    assert [(h["revision"], h["deleted"]) for h in history] == [(1, False), (2, False), (3, True)]


async def test_a_parent_with_children_cannot_be_deleted(registry: Running) -> None:
    r = await registry.client.delete(f"/v1/records/division/{COMMUNITY}")
    assert G1 in refused(r, 409, "reference.in_use")


async def test_as_of_returns_the_rules_then_in_force(registry: Running) -> None:
    c = registry.client
    for dept in ("chengguan", "jiedao_zhifa"):
        body = {
            "name": dept,
            "active": True,
            "tier": "district",
            "division_code": DISTRICT,
            "parent_code": None,
            "category_codes": [],
        }
        assert (await c.put(f"/v1/records/department/{dept}", json=body)).status_code == 200
    rule = {
        "name": "占道经营",
        "active": True,
        "priority": 10,
        "match": {
            "category_codes": ["city.street_vending"],
            "networks": [],
            "severity_levels": [],
            "division_codes": [DISTRICT],
        },
        "departments": ["chengguan"],
        "whistle": False,
    }
    assert (await c.put("/v1/records/routing_rule/vending", json=rule)).status_code == 200
    await asyncio.sleep(0.01)  # the two versions must be apart in time (microsecond timestamps)
    before = datetime.now(UTC)
    await asyncio.sleep(0.01)
    assert (
        await c.put("/v1/records/routing_rule/vending", json={**rule, "departments": ["jiedao_zhifa"]})
    ).status_code == 200
    then = (await c.get("/v1/records/routing_rule/vending", params={"as_of": before.isoformat()})).json()
    now = (await c.get("/v1/records/routing_rule/vending")).json()
    assert (then["revision"], then["departments"]) == (1, ["chengguan"])
    assert (now["revision"], now["departments"]) == (2, ["jiedao_zhifa"])
    listed = (await c.get("/v1/records/routing_rule", params={"as_of": before.isoformat()})).json()["items"]
    assert [(r["code"], r["departments"]) for r in listed] == [("vending", ["chengguan"])]
    routed_then = await c.get(
        "/v1/lookup/route", params={"category": "city.street_vending", "grid": G1, "at": before.isoformat()}
    )
    assert routed_then.json()["departments"] == ["chengguan"], routed_then.text
    await registry.wait_for("routing_rule", "vending", 2)
    routed_now = (
        await c.get("/v1/lookup/route", params={"category": "city.street_vending", "grid": G1})
    ).json()
    assert routed_now["departments"] == ["jiedao_zhifa"]
    assert routed_now["topics"] == ["dispatch.orders.jiedao_zhifa.v1"]


async def test_lists_page_in_code_order(registry: Running) -> None:
    c = registry.client
    first = (await c.get("/v1/records/division", params={"limit": 2})).json()
    assert [d["code"] for d in first["items"]] == [CITY, DISTRICT]
    rest = (await c.get("/v1/records/division", params={"limit": 2, "after": first["next_after"]})).json()
    assert [d["code"] for d in rest["items"]] == [STREET, COMMUNITY]
    grids = (await c.get("/v1/records/grid", params={"parent": COMMUNITY, "level": "grid"})).json()["items"]
    assert {G1, G2} <= {g["code"] for g in grids}


async def test_geojson_import_is_all_or_nothing_and_exports_back(registry: Running) -> None:
    c = registry.client
    micro = [
        (f"{G2}001", area(119.41, 32.38, 119.415, 32.39)),
        (f"{G2}002", area(119.415, 32.38, 119.42, 32.39)),
    ]
    bad = [*micro, (f"{G2}003", area(119.414, 32.38, 119.416, 32.39))]  # overlaps both others
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": code,
                "geometry": g,
                "properties": {k: v for k, v in grid(code, g, level="micro_grid").items() if k != "area"},
            }
            for code, g in bad
        ],
    }
    refused(await c.post("/v1/import/geojson", json=collection), 409, "geometry.overlaps_sibling")
    assert (await c.get(f"/v1/records/grid/{G2}001")).status_code == 404  # nothing of the batch was stored
    collection["features"] = collection["features"][:2]
    assert (await c.post("/v1/import/geojson", json=collection)).json() == {"records": 2, "changed": 2}
    exported = (await c.get("/v1/export/geojson", params={"parent": G2})).json()
    assert [f["id"] for f in exported["features"]] == [code for code, _ in micro]
    assert exported["features"][0]["properties"]["level"] == "micro_grid"
    await registry.wait_for("grid", f"{G2}002", 1)
    located = (await c.get("/v1/lookup/point", params={"lon": 119.417, "lat": 32.385})).json()
    assert located["micro_grid"]["code"] == f"{G2}002" and located["grid"]["code"] == G2
    assert located["community"]["code"] == COMMUNITY and located["district"]["code"] == DISTRICT
    refused(await c.get("/v1/lookup/point", params={"lon": 100.0, "lat": 20.0}), 404, "lookup.outside")


async def test_coverage_reports_gaps_and_the_openapi_document_is_served(registry: Running) -> None:
    c = registry.client
    report = (await c.get(f"/v1/coverage/division/{COMMUNITY}")).json()
    # G1 and G2 cover the southern half of the community; other tests may add a grid in the north
    assert report["levels"]["grid"]["children"] >= 2
    assert 0.0 <= report["levels"]["grid"]["uncovered"] <= 0.5 + 1e-9
    street = (await c.get(f"/v1/coverage/division/{STREET}")).json()
    assert street["levels"]["community"] == {"children": 1, "uncovered": pytest.approx(0.75)}
    refused(await c.get("/v1/coverage/division/321003999"), 404, "record.not_found")
    spec = (await c.get("/openapi.json")).json()
    assert {"/v1/records/{kind}/{code}", "/v1/lookup/point", "/v1/lookup/route", "/v1/import/geojson"} <= set(
        spec["paths"]
    )
