"""Record rules: contract shape, codes, polygons, placement among siblings, references."""

from __future__ import annotations

import json
from typing import Any

import pytest
from shapely.geometry import box, mapping

from grid_registry.domain.records import (
    RecordRejected,
    check_geometry,
    check_placement,
    check_record,
    placement,
    references,
    same_content,
    uncovered,
)


def grid(code: str = "321003009001001", **over: Any) -> dict[str, Any]:
    record = {
        "kind": "grid",
        "code": code,
        "revision": 1,
        "updated_at": "2026-03-01T00:00:00Z",
        "name": "网格",
        "active": True,
        "level": "grid",
        "community_code": code[:12],
        "parent_grid_code": None,
        "special_kind": None,
        "area": json.loads(json.dumps(mapping(box(119.40, 32.38, 119.41, 32.39)))),
    }
    return {**record, **over}


def rejected(record: dict[str, Any]) -> RecordRejected:
    with pytest.raises(RecordRejected) as info:
        check_record(record)
    return info.value


def test_a_valid_grid_passes_and_gives_its_area() -> None:
    area = check_record(grid())
    assert area is not None and area.bounds == (119.40, 32.38, 119.41, 32.39)


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"code": "32100300900100A", "community_code": "321003009001"}, "grid_code.not_digits"),
        ({"code": "32100300900101", "community_code": "321003009001"}, "grid_code.bad_length"),
        ({"level": "micro_grid"}, "grid_code.level_mismatch"),
        ({"community_code": "321003009002"}, "grid_code.community_mismatch"),
        ({"parent_grid_code": "321003009001002"}, "grid_code.parent_mismatch"),
        ({"level": "county"}, "schema.invalid"),
        ({"name": ""}, "schema.invalid"),
    ],
)
def test_malformed_grids_are_refused_with_their_reason(over: dict[str, Any], reason: str) -> None:
    assert rejected(grid(**over)).reason == reason


def test_schema_errors_name_the_field() -> None:
    error = rejected(grid(active="yes"))
    assert error.problem == "invalid" and "active" in error.detail


def test_a_micro_grid_code_must_extend_its_parent_grid() -> None:
    code = "321003009001001002"
    assert check_record(grid(code, level="micro_grid", parent_grid_code=code[:15])) is not None
    assert rejected(grid("321003009001901002", level="micro_grid")).reason == "grid_code.special_has_micro"


@pytest.mark.parametrize(
    ("code", "level", "parent", "reason"),
    [
        ("32100", "district", "321000", "division_code.malformed"),
        ("321003009", "street", "321004", "division_code.parent_mismatch"),
        ("330003", "district", "321000", "division_code.parent_mismatch"),
        ("321003009001", "community", "321003", "division_code.parent_mismatch"),
    ],
)
def test_division_codes_fit_their_level_and_parent(code: str, level: str, parent: str, reason: str) -> None:
    record = {
        "kind": "division",
        "code": code,
        "revision": 1,
        "updated_at": "2026-03-01T00:00:00Z",
        "name": "x",
        "active": True,
        "level": level,
        "parent_code": parent,
        "area": None,
    }
    assert rejected(record).reason == reason


def test_polygons_must_be_closed_and_simple() -> None:
    open_ring = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}
    with pytest.raises(RecordRejected, match=r"geometry\.not_closed"):
        check_geometry(open_ring)
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    with pytest.raises(RecordRejected, match=r"geometry\.self_intersection"):
        check_geometry(bowtie)


def test_placement_refuses_overlap_and_overhang_but_not_a_shared_edge() -> None:
    parent = ("321003009001", box(0, 0, 2, 1))
    left, right = box(0, 0, 1, 1), box(1, 0, 2, 1)
    check_placement("b", right, parent, {"a": left})  # sharing an edge is fine
    with pytest.raises(RecordRejected) as info:
        check_placement("b", box(0.9, 0, 2, 1), parent, {"a": left})
    assert (info.value.problem, info.value.reason) == ("conflict", "geometry.overlaps_sibling")
    assert "a" in info.value.detail
    with pytest.raises(RecordRejected, match=r"geometry\.outside_parent"):
        check_placement("b", box(1, 0, 2.5, 1), parent, {})


def test_specials_are_kept_inside_their_community_but_may_overlap_grids() -> None:
    special = grid("321003009001901", level="special", special_kind="school")
    place = placement(special)
    assert place is not None and place.parent_code == "321003009001" and place.sibling_levels == ()


def test_references_name_every_record_a_record_points_at() -> None:
    staff = {
        "kind": "staff",
        "code": "x",
        "grid_codes": ["321003009001001"],
        "department": "chengguan",
    }
    assert list(references(staff)) == [
        ("grid", "321003009001001", "grid_codes"),
        ("department", "chengguan", "department"),
    ]
    micro = grid("321003009001001002", level="micro_grid", parent_grid_code="321003009001001")
    assert ("grid", "321003009001001", "parent_grid_code") in list(references(micro))


def test_revision_and_time_are_not_content() -> None:
    assert same_content(grid(), grid(revision=7, updated_at="2027-01-01T00:00:00Z"))
    assert not same_content(grid(), grid(name="另一个"))
    assert not same_content(None, grid())


def test_uncovered_is_the_share_of_the_parent_no_child_covers() -> None:
    parent = box(0, 0, 4, 1)
    assert uncovered(parent, [box(0, 0, 1, 1), box(1, 0, 4, 1)]) == 0.0
    assert uncovered(parent, [box(0, 0, 1, 1)]) == pytest.approx(0.75)
    assert uncovered(parent, []) == 1.0
