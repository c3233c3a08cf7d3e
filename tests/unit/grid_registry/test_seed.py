"""The seed: complete (every category routed, the conformance MNs placed in Hanjiang, staff per grid),
valid (every record passes the record rules, siblings tile their parent) and deterministic."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import pytest
from shapely.geometry import Point, shape

from grid_registry.domain.records import RecordRejected, check_placement, check_record, placement
from grid_registry.domain.seed import category_codes, seed_records
from grid_registry.domain.seed_catalog import PRIMARY
from onegrid.topics import dispatch_orders_topic
from registry_client import allows_self_handle, match_route, match_sla

Json = dict[str, Any]


@pytest.fixture(scope="module")
def seed() -> list[Json]:
    return seed_records()


@pytest.fixture(scope="module")
def by_kind(seed: list[Json]) -> dict[str, dict[str, Json]]:
    out: dict[str, dict[str, Json]] = defaultdict(dict)
    for r in seed:
        out[r["kind"]][r["code"]] = r
    return out


def test_every_seed_record_passes_the_record_rules(seed: list[Json]) -> None:
    for record in seed:
        stamped = json.loads(json.dumps({**record, "revision": 1, "updated_at": "2026-03-01T00:00:00Z"}))
        try:
            check_record(stamped)
        except RecordRejected as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{record['kind']}:{record['code']}: {exc}")
    keys = [(r["kind"], r["code"]) for r in seed]
    assert len(keys) == len(set(keys))


def test_seeded_cells_lie_inside_their_parents_without_overlapping_siblings(
    by_kind: dict[str, dict[str, Json]],
) -> None:
    spatial = {
        **{("division", c): r for c, r in by_kind["division"].items()},
        **{("grid", c): r for c, r in by_kind["grid"].items()},
    }
    groups: dict[tuple[str, str, str], dict[str, Any]] = defaultdict(dict)
    for (kind, code), r in spatial.items():
        place = placement(r)
        if r.get("area") is not None and place is not None:
            groups[(kind, place.parent_code, r["level"])][code] = shape(r["area"])
    checked = 0
    for (_kind, parent_code, level), members in groups.items():
        parent = spatial.get(("grid" if level == "micro_grid" else "division", parent_code))
        parent_area = (
            None if parent is None or parent.get("area") is None else (parent_code, shape(parent["area"]))
        )
        for code, area in members.items():
            siblings = {} if level == "special" else members
            check_placement(code, area, parent_area, siblings)
            checked += 1
    assert checked > 4000


def test_every_taxonomy_category_is_routed_and_has_deadlines(by_kind: dict[str, dict[str, Json]]) -> None:
    categories = category_codes()
    assert set(PRIMARY) == set(categories)
    rules, policies = list(by_kind["routing_rule"].values()), list(by_kind["sla_policy"].values())
    for category in categories:
        for severity in (1, 2, 3, 4):
            route = match_route(rules, category, severity, codes=["321003009001001"], tier="district")
            assert route is not None and route.departments, (category, severity)
            assert all(d in by_kind["department"] for d in route.departments)
            assert route.whistle == (severity <= 2)
            assert match_sla(policies, category, severity) is not None
    vending_at_grid = match_route(rules, "city.street_vending", 4, tier="grid")
    assert vending_at_grid is not None and vending_at_grid.departments == ("jiedao_zhifa",)


def test_the_sla_leaves_only_small_ordinary_problems_to_the_grid_worker(
    by_kind: dict[str, dict[str, Json]],
) -> None:
    policies = list(by_kind["sla_policy"].values())
    categories = set(category_codes())

    def allowed(category: str, severity: int) -> bool:
        return allows_self_handle(match_sla(policies, category, severity), category)

    assert allowed("city.garbage", 4) and allowed("city.street_vending", 4)
    assert not allowed("city.garbage", 3)  # a bigger case goes up at once
    assert not allowed("city.facility_damage", 4) and not allowed("env.air.exceedance", 4)
    assert not allowed("city.streetlight", 4)  # its own policy names none
    for policy in policies:
        assert set(policy.get("self_handle_categories", [])) <= categories, policy["code"]


def test_departments_name_their_orders_topics(by_kind: dict[str, dict[str, Json]]) -> None:
    wanted = {"chengguan", "shengtai", "yingji", "gongan", "shichang", "zhujian", "shuiwu", "jiedao_zhifa"}
    assert wanted <= set(by_kind["department"])
    for code in by_kind["department"]:
        assert dispatch_orders_topic(code) == f"dispatch.orders.{code}.v1"


def test_stations_include_the_conformance_mns_and_lie_in_their_grid(
    by_kind: dict[str, dict[str, Json]],
) -> None:
    stations = by_kind["station"]
    assert {
        ("010000A8900016F000169DC0", "32"),
        ("JLYP01_AIR01_0001", "22"),
        ("Z13401000010301", "22"),
        ("LD130133000015", "32"),
    } <= {(mn, s["system_code"]) for mn, s in stations.items()}
    systems = Counter(s["system_code"] for s in stations.values())
    assert systems["22"] >= 10 and systems["32"] >= 10 and len(stations) >= 24
    hanjiang = shape(by_kind["division"]["321003"]["area"])
    for mn, s in stations.items():
        point = Point(s["point"]["lon"], s["point"]["lat"])
        assert hanjiang.contains(point), mn
        assert shape(by_kind["grid"][s["grid_code"]]["area"]).contains(point), mn
        assert s["grid_code"].startswith(s["division_code"])


def test_a_few_staff_work_every_grid(by_kind: dict[str, dict[str, Json]]) -> None:
    per_grid: Counter[str] = Counter()
    for person in by_kind["staff"].values():
        per_grid.update(person["grid_codes"])
    grids = [c for c, g in by_kind["grid"].items() if g["level"] == "grid"]
    assert all(per_grid[g] >= 3 for g in grids)  # leader, full-time worker, volunteer
    roles = Counter(p["role"] for p in by_kind["staff"].values())
    assert set(roles) == {"grid_leader", "grid_worker", "micro_grid_worker", "volunteer"}


def test_the_seed_is_deterministic(seed: list[Json]) -> None:
    assert json.dumps(seed_records(), sort_keys=True) == json.dumps(seed, sort_keys=True)
