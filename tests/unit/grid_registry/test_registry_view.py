"""registry_client on in-memory records: changes and tombstones, the lazily rebuilt GridIndex,
stations, routing rules, SLA policies and the working-day calendar."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from shapely.geometry import box, mapping

from onegrid.kafka.memory import MemoryBroker
from registry_client import RegistryView, due_at, match_route, match_sla

Json = dict[str, Any]


def division(code: str, level: str, parent: str | None, bounds: tuple[float, ...]) -> Json:
    return {
        "kind": "division",
        "code": code,
        "level": level,
        "parent_code": parent,
        "active": True,
        "name": code,
        "area": mapping(box(*bounds)),
    }


def grid(code: str, bounds: tuple[float, ...], level: str = "grid") -> Json:
    return {
        "kind": "grid",
        "code": code,
        "level": level,
        "community_code": code[:12],
        "parent_grid_code": code[:15] if level == "micro_grid" else None,
        "active": True,
        "name": code,
        "area": mapping(box(*bounds)),
    }


def put(view: RegistryView, record: Json) -> None:
    view.apply(f"{record['kind']}:{record['code']}", json.dumps(record).encode())


@pytest.fixture
def view() -> RegistryView:
    v = RegistryView()
    put(v, division("321003", "district", "321000", (0, 0, 4, 4)))
    put(v, division("321003009", "street", "321003", (0, 0, 2, 2)))
    put(v, division("321003009001", "community", "321003009", (0, 0, 2, 1)))
    put(v, grid("321003009001001", (0, 0, 1, 1)))
    put(v, grid("321003009001002", (1, 0, 2, 1)))
    put(v, grid("321003009001002001", (1, 0, 1.5, 1), "micro_grid"))
    return v


def test_the_index_is_rebuilt_only_after_a_spatial_change(view: RegistryView) -> None:
    index = view.grid_index()
    chain = view.locate(1.2, 0.5)
    assert chain is not None and chain.micro_grid == "321003009001002001" and chain.district == "321003"
    put(view, {"kind": "station", "code": "MN1", "active": True, "point": {"lon": 1.2, "lat": 0.5}})
    assert view.grid_index() is index  # a station is no reason to rebuild
    put(view, grid("321003009001002002", (1.5, 0, 2, 1), "micro_grid"))
    assert view.grid_index() is not index
    assert view.locate(1.7, 0.5).micro_grid == "321003009001002002"  # type: ignore[union-attr]
    view.apply("grid:321003009001002002", None)
    assert view.locate(1.7, 0.5).micro_grid is None  # type: ignore[union-attr]
    assert view.locate(3.0, 3.0).leaf == "321003"  # type: ignore[union-attr]
    assert view.locate(9.0, 9.0) is None


async def test_the_view_follows_a_changelog_through_the_loop_handler() -> None:
    broker = MemoryBroker()
    broker.append(
        "grid.registry.v1",
        json.dumps({"kind": "station", "code": "MN1", "active": True}).encode(),
        key=b"station:MN1",
    )
    broker.append(
        "grid.registry.v1",
        json.dumps({"kind": "station", "code": "MN2", "active": False}).encode(),
        key=b"station:MN2",
    )
    broker.append("grid.registry.v1", None, key=b"station:MN1")
    view = RegistryView()
    await view.handle(broker.records("grid.registry.v1"))
    assert view.station("MN1") is None  # deleted
    assert view.station("MN2") is None  # inactive
    assert view.get("station", "MN2") is not None
    with pytest.raises(ValueError, match="kind"):
        view.apply("no-colon", b"{}")


def rule(code: str, priority: int, departments: list[str], **match: Any) -> Json:
    m = {"category_codes": [], "networks": [], "severity_levels": [], "division_codes": [], **match}
    return {
        "kind": "routing_rule",
        "code": code,
        "active": True,
        "priority": priority,
        "match": m,
        "departments": departments,
        "whistle": priority < 20,
    }


def test_the_matching_rule_with_the_lowest_priority_wins() -> None:
    rules = [
        rule("base", 100, ["chengguan"], category_codes=["city.street_vending"]),
        rule(
            "street", 50, ["jiedao_zhifa"], category_codes=["city.street_vending"], tiers=["grid", "street"]
        ),
        rule(
            "major",
            10,
            ["chengguan", "yingji"],
            category_codes=["city.street_vending"],
            severity_levels=[1, 2],
        ),
        rule("elsewhere", 1, ["other"], division_codes=["321002"]),
        {**rule("off", 0, ["nobody"]), "active": False},
    ]
    hj = ["321003", "321003009001001"]
    assert match_route(rules, "city.street_vending", 4, codes=hj).rule == "base"  # type: ignore[union-attr]
    assert match_route(rules, "city.street_vending", 4, codes=hj, tier="grid").departments == (
        "jiedao_zhifa",
    )  # type: ignore[union-attr]
    major = match_route(rules, "city.street_vending", 2, codes=hj, tier="grid")
    assert major is not None and major.rule == "major" and major.whistle
    assert match_route(rules, "city.street_vending", 4, codes=["321002001"]).rule == "elsewhere"  # type: ignore[union-attr]
    assert match_route(rules, "city.garbage", 4, codes=hj) is None


def test_the_most_specific_sla_policy_wins() -> None:
    def policy(code: str, categories: list[str], severities: list[int]) -> Json:
        return {
            "code": code,
            "active": True,
            "match": {"category_codes": categories, "severity_levels": severities},
        }

    policies = [
        policy("all", [], []),
        policy("sev1", [], [1]),
        policy("fire", ["emergency.fire"], []),
        policy("fire1", ["emergency.fire"], [1]),
    ]
    assert match_sla(policies, "city.garbage", 4)["code"] == "all"  # type: ignore[index]
    assert match_sla(policies, "city.garbage", 1)["code"] == "sev1"  # type: ignore[index]
    assert match_sla(policies, "emergency.fire", 3)["code"] == "fire"  # type: ignore[index]
    assert match_sla(policies, "emergency.fire", 1)["code"] == "fire1"  # type: ignore[index]
    assert match_sla(policies[1:], "city.garbage", 4) is None


def test_deadlines_on_the_working_day_calendar() -> None:
    office = {
        "calendar": "working_days",
        "business_hours": {"start": "08:30", "end": "17:30", "holidays": ["2026-03-09"]},
    }
    friday_5pm = datetime(2026, 3, 6, 9, 0, tzinfo=UTC)  # 17:00 China Standard Time
    # 30 minutes on Friday, Monday 9 March is the office's own closure, the other 30 minutes on Tuesday
    assert due_at(friday_5pm, 3600, office) == datetime(2026, 3, 10, 1, 0, tzinfo=UTC)
    # On the official calendar Saturday 28 February 2026 is a make-up working day (调休 after the Spring
    # Festival): an hour from Friday 27 February 17:00 ends on that Saturday at 09:00.
    assert due_at(datetime(2026, 2, 27, 9, 0, tzinfo=UTC), 3600, office) == datetime(
        2026, 2, 28, 1, 0, tzinfo=UTC
    )
    night = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # 23:00 Tuesday: counting starts Wednesday 08:30
    assert due_at(night, 60, office) == datetime(2026, 3, 4, 0, 31, tzinfo=UTC)
    assert due_at(friday_5pm, 3600, {"calendar": "24x7"}) == datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="aware"):
        due_at(datetime(2026, 3, 3), 60, office)


async def test_the_async_index_is_built_once_for_concurrent_callers(view: RegistryView) -> None:
    import asyncio

    first, second = await asyncio.gather(view.grid_index_async(), view.grid_index_async())
    assert first is second is view.grid_index()
    put(view, grid("321003009001002002", (1.5, 0, 2, 1), "micro_grid"))
    rebuilt = await view.grid_index_async()
    assert rebuilt is not first and rebuilt.lookup(1.7, 0.5).micro_grid == "321003009001002002"  # type: ignore[union-attr]


async def test_an_eager_view_rebuilds_the_index_off_the_event_loop_when_a_change_arrives() -> None:
    import threading

    from onegrid.geo import index as geo_index
    from onegrid.kafka.memory import MemoryRecord

    view = RegistryView(eager_index=True)
    put(view, division("321003", "district", "321000", (0, 0, 4, 4)))
    put(view, division("321003009", "street", "321003", (0, 0, 2, 2)))
    first = view.grid_index()
    built_on: list[int] = []
    build = geo_index.GridIndex.build

    def spy(*args: Any, **kw: Any) -> Any:
        built_on.append(threading.get_ident())
        return build(*args, **kw)

    geo_index.GridIndex.build = spy  # type: ignore[method-assign]
    try:
        street = division("321003010", "street", "321003", (2, 0, 4, 2))
        await view.handle(
            [MemoryRecord("registry", 0, 0, b"division:321003010", json.dumps(street).encode())]
        )
    finally:
        geo_index.GridIndex.build = build  # type: ignore[method-assign]
    assert built_on and threading.get_ident() not in built_on, "built on the event loop's thread"
    rebuilt = view.grid_index()  # already current: no build here
    assert len(built_on) == 1 and rebuilt is not first
    assert rebuilt.lookup(3, 1).street == "321003010"  # type: ignore[union-attr]


async def test_an_eager_view_rebuilds_once_a_burst_of_changes_is_applied() -> None:
    """The registry seeded or re-imported while a service runs comes in several batches: the eager
    view builds its index after the burst's last one (its table knows of no more), not after each
    (seconds a build, during which the table applies nothing and decisions wait for it)."""
    from onegrid.geo import index as geo_index
    from onegrid.kafka.memory import MemoryRecord

    view = RegistryView(eager_index=True)
    put(view, division("321003", "district", "321000", (0, 0, 4, 4)))
    first = view.grid_index()
    builds: list[int] = []
    build = geo_index.GridIndex.build

    def counted(*args: Any, **kw: Any) -> Any:
        builds.append(1)
        return build(*args, **kw)

    more = [True, True, False]  # the table knows of more after the first two batches
    view.more_coming = lambda: more[0]
    geo_index.GridIndex.build = counted  # type: ignore[method-assign]
    try:
        for i, code in enumerate(("321003009", "321003010", "321003011")):
            street = division(code, "street", "321003", (i, 0, i + 1, 1))
            record = MemoryRecord("registry", 0, i, f"division:{code}".encode(), json.dumps(street).encode())
            await view.handle([record])
            assert len(builds) == (0 if more[0] else 1), (i, builds)
            more.pop(0)
    finally:
        geo_index.GridIndex.build = build  # type: ignore[method-assign]
    rebuilt = view.grid_index()  # already current: no build here
    assert len(builds) == 1 and rebuilt is not first
    assert rebuilt.lookup(2.5, 0.5).street == "321003011"  # type: ignore[union-attr]
