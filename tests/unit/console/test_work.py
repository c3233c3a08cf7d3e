"""The grid worker's day: my cases nearest first with what is expected of me; the patrol record the
app's report becomes; the photos of a case by hash on the board."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from console.domain.board import CaseBoard
from console.domain.work import StoredPhoto, expected_action, in_grids, my_work, patrol_record, photo_ref
from onegrid.auth import ScopeFilter

ROOT = Path(__file__).resolve().parents[3]
PATROL = json.loads((ROOT / "contracts/legacy/patrol.v1.schema.json").read_text(encoding="utf-8"))
CASE_EVENT = json.loads((ROOT / "contracts/schemas/case-event.v1.json").read_text())["examples"][0]
LIFECYCLE = json.loads((ROOT / "contracts/schemas/lifecycle-event.v1.json").read_text())["examples"][0]
SHA = "ab" * 32


# The seed's shape: ordinary cases on one policy that leaves garbage (not a broken facility) to the grid.
POLICIES = [
    {"code": "severity-4", "active": True, "match": {"category_codes": [], "severity_levels": [4]},
     "self_handle_categories": ["city.garbage"]},
    {"code": "any", "active": True, "match": {"category_codes": [], "severity_levels": []}},
]  # fmt: skip


def case(
    state: str,
    department: str | None = None,
    lat: float | None = None,
    due: str = "2026-12-05T00:00:00Z",
    category: str = "city.garbage",
    severity: int = 4,
):  # type: ignore[no-untyped-def]
    return {"case_id": state + str(lat), "state": state, "department": department, "lat": lat,
            "lon": None if lat is None else 119.41, "deadlines": {"resolve_by": due},
            "category": category, "severity": severity}  # fmt: skip


@pytest.mark.parametrize(
    ("state", "department", "expected"),
    [
        ("registered", None, "self_handle"),
        ("reopened", None, "self_handle"),
        ("registered", "weijian", "follow"),
        ("resolved", "weijian", "verify"),
        ("returned", "weijian", "supplement"),
        ("dispatched", "weijian", "follow"),
    ],
)
def test_what_is_expected_of_the_worker(state: str, department: str | None, expected: str) -> None:
    assert expected_action(case(state, department), POLICIES) == expected


@pytest.mark.parametrize(("category", "severity"), [("city.facility_damage", 4), ("city.garbage", 3)])
def test_handling_on_the_spot_is_offered_only_where_the_sla_allows_it(category: str, severity: int) -> None:
    """Before: every case of the grid without a department was offered to be handled on the spot."""
    waiting = case("registered", category=category, severity=severity)
    assert expected_action(waiting, POLICIES) == "follow"
    assert expected_action(case("registered"), []) == "follow"  # no policy: nothing is allowed
    assert [c["expected"] for c in my_work([waiting, case("reopened")], None, POLICIES)] == [
        "follow",
        "self_handle",
    ]


def test_nearest_first_from_the_phones_place_and_by_deadline_without_one() -> None:
    far, near, nowhere = (
        case("registered", lat=32.40),
        case("resolved", "x", lat=32.3943),
        case("dispatched", "x"),
    )
    ordered = my_work([far, nowhere, near], (32.3942, 119.41), POLICIES)
    assert [c["case_id"] for c in ordered] == [near["case_id"], far["case_id"], nowhere["case_id"]]
    assert ordered[0]["distance_m"] == 11 and ordered[2]["distance_m"] is None
    early = case("dispatched", "x", due="2026-12-04T00:00:00Z")
    assert my_work([far, early], None, POLICIES)[0] is not far


def test_grids_nest_by_prefix() -> None:
    assert in_grids("321003103210004002", ["321003103210004"])
    assert not in_grids("321003001001001", ["321003103210004"])


def test_the_patrol_record_is_valid_for_the_feeds_contract() -> None:
    photo = StoredPhoto(SHA, photo_ref(SHA, "image/jpeg"), "image/jpeg", 1234)
    report = {
        k: PATROL["examples"][0][k]
        for k in ("report_id", "grid_code", "category", "description", "severity", "location", "reported_at")
    }
    record = patrol_record(
        report=report,
        worker_id="grid_worker:gw-a",
        worker_display="王*",
        photos=[photo],
        received_at=datetime(2026, 12, 4, 1, 0, tzinfo=UTC),
    )
    assert list(Draft202012Validator(PATROL).iter_errors(record)) == []
    assert record["photos"][0]["ref"] == f"photos/ab/{SHA}.jpg"
    with pytest.raises(ValueError):
        photo_ref("ABC", "image/jpeg")
    with pytest.raises(ValueError):
        photo_ref(SHA, "application/pdf")


def test_the_board_shows_a_cases_photos_by_hash() -> None:
    board = CaseBoard()
    ev = dict(CASE_EVENT, attributes={"photos": [{"sha256": SHA, "ref": f"photos/ab/{SHA}.jpg"}]})
    board.case_event(ev)
    after = "cd" * 32
    board.lifecycle(dict(LIFECYCLE, case_id=ev["case_id"], seq=1, action="self_handle", to_state="resolved",
                         evidence=[f"photos/cd/{after}.jpg", "evidence/not-a-photo.pdf"]))  # fmt: skip
    c = board.get(ev["case_id"], ScopeFilter(unrestricted=True))
    assert c is not None
    assert [(p["sha256"], p["by"]) for p in c.photos] == [(SHA, "report"), (after, "self_handle")]


def test_a_departments_evidence_is_on_the_board_as_photos_and_refs() -> None:
    """Before: the board dropped evidence refs not named by a hash, and a photo could be read by hash
    by anyone who reads cases, whatever the case's place."""
    board = CaseBoard()
    ev = dict(CASE_EVENT, attributes={"photos": [{"sha256": SHA, "ref": f"photos/ab/{SHA}.jpg"}]})
    board.case_event(ev)
    done = "5c" * 32
    board.lifecycle(dict(LIFECYCLE, case_id=ev["case_id"], seq=1, action="resolve", to_state="resolved",
                         evidence=[f"evidence/2026/03/01/{done}.jpg", "evidence/report.pdf"]))  # fmt: skip
    everyone = ScopeFilter(unrestricted=True)
    c = board.get(ev["case_id"], everyone)
    assert c is not None
    assert [(p["sha256"], p["by"]) for p in c.photos] == [(SHA, "report"), (done, "resolve")]
    assert [(e["ref"], e["by"]) for e in c.to_json(datetime(2026, 3, 1, tzinfo=UTC))["evidence"]] == [
        ("evidence/report.pdf", "resolve")
    ]
    # a photo is seen through a case the caller may see
    assert c.division is not None
    mine, elsewhere = ScopeFilter(prefixes=(c.division,)), ScopeFilter(prefixes=("321084001001001",))
    assert board.photo(ev["case_id"], done, mine) is not None
    assert board.photo(ev["case_id"], done, elsewhere) is None
    assert board.photo(ev["case_id"], "ee" * 32, everyone) is None
    assert board.sees_photo(done, mine) and not board.sees_photo(done, elsewhere)
    board.lifecycle(dict(LIFECYCLE, case_id=ev["case_id"], seq=2, action="close", to_state="closed"))
    assert not board.sees_photo(done, mine)
