"""legacy.patrol.v1: the contract's example passes schema and parser alike; a patrol report becomes a
case of network `patrol` with the photos' hashes in its attributes, placed in the worker's grid; the
same report sent twice is one case; records breaking the contract are refused with a reason."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from intake.domain.crosswalk import Crosswalk
from intake.domain.errors import Rejected
from intake.domain.feeds.patrol.record import parse_patrol
from intake.domain.normalize import Provenance
from intake.domain.process import DUPLICATE, Inbound, Intake
from intake.geography import ViewGeography

CONTRACTS = Path(__file__).resolve().parents[3] / "contracts"
SCHEMA = json.loads((CONTRACTS / "legacy/patrol.v1.schema.json").read_text(encoding="utf-8"))
EXAMPLE: dict[str, Any] = SCHEMA["examples"][0]
T0 = datetime(2026, 12, 4, 1, 15, tzinfo=UTC)
GRID = "321003103210004"  # 军桥村委会第4网格 of the reference seed, around (32.3942, 119.4129)


def record(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(EXAMPLE) | {"grid_code": GRID}
    doc.update(changes)
    return doc


def raw(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


@pytest.fixture
def intake(reference_view) -> Intake:
    return Intake(crosswalk=Crosswalk.load(), geography=ViewGeography(reference_view))


def inbound(doc: dict[str, Any], offset: int = 0) -> Inbound:
    return Inbound("patrol", raw(doc), Provenance("legacy.patrol.v1", 0, offset, T0))


def test_the_example_is_valid_for_schema_and_parser() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert list(Draft202012Validator(SCHEMA).iter_errors(EXAMPLE)) == []
    assert parse_patrol(raw(EXAMPLE)).report_id == EXAMPLE["report_id"]


def test_a_report_becomes_a_patrol_case_with_its_photo_hashes(intake: Intake) -> None:
    out = intake.process([inbound(record())])
    out.apply()
    (o,) = out.outcomes
    assert o.error is None, o.error
    (ev,) = o.events
    assert ev.source.network == "patrol" and ev.category.code == "community.sanitation"
    assert ev.severity.level == 4
    assert ev.division.grid == GRID
    assert [p["sha256"] for p in ev.attributes["photos"]] == [EXAMPLE["photos"][0]["sha256"]]
    assert ev.attributes["worker_id"] == EXAMPLE["worker"]["id"]


def test_the_same_report_resent_is_one_case(intake: Intake) -> None:
    first = intake.process([inbound(record())])
    first.apply()
    again = intake.process([inbound(record(received_at="2026-12-04T01:20:00Z"), 1)])
    again.apply()
    assert len(first.outcomes[0].events) == 1
    assert again.outcomes[0].events == [] and again.outcomes[0].no_case == DUPLICATE


def test_an_unknown_category_is_quarantined(intake: Intake) -> None:
    (o,) = intake.process([inbound(record(category="community.no_such_thing"))]).outcomes
    assert o.error is not None and o.error.reason == "crosswalk.unmapped_code"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"photos": []}, "patrol.invalid_value"),
        ({"photos": EXAMPLE["photos"] * 7}, "patrol.invalid_value"),
        ({"photos": EXAMPLE["photos"] * 2}, "patrol.invalid_value"),
        ({"severity": "V"}, "patrol.invalid_value"),
        ({"description": "   "}, "patrol.invalid_value"),
        ({"reported_at": "2026-12-04T09:12:30"}, "patrol.invalid_value"),
        ({"grid_code": "3210"}, "patrol.invalid_value"),
        ({"extra": 1}, "patrol.invalid_value"),
        (
            {"photos": [EXAMPLE["photos"][0] | {"ref": "photos/3b/" + "0" * 64 + ".jpg"}]},
            "patrol.invalid_value",
        ),
    ],
)
def test_contract_breaches_are_refused_by_parser_and_schema(changes: dict[str, Any], reason: str) -> None:
    doc = record(**changes)
    with pytest.raises(Rejected) as e:
        parse_patrol(raw(doc))
    assert e.value.reason == reason
    # a blank description and a ref naming another hash are rules the schema cannot state
    if "description" not in changes and "ref" not in str(changes):
        assert list(Draft202012Validator(SCHEMA).iter_errors(doc)), f"the schema lets {changes} through"


def test_not_json_is_malformed() -> None:
    with pytest.raises(Rejected) as e:
        parse_patrol(b"{not json")
    assert e.value.reason == "patrol.malformed"
