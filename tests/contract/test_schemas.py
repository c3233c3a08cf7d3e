"""Every published schema is well-formed, identified by its file name, and its examples validate."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).resolve().parents[2] / "contracts" / "schemas"
NAMES = sorted(p.name for p in SCHEMAS.glob("*.json"))
EXAMPLES = [
    (p.name, i)
    for p in sorted(SCHEMAS.glob("*.json"))
    for i in range(len(json.loads(p.read_text(encoding="utf-8")).get("examples", [])))
]


def test_the_catalogue_has_every_message_schema() -> None:
    assert set(NAMES) >= {
        "case-event.v1.json",
        "dispatch-order.v1.json",
        "feedback.v1.json",
        "lifecycle-event.v1.json",
        "signed-tree-head.v1.json",
        "registry-record.v1.json",
        "cloudevent-headers.v1.json",
        "dead-letter-headers.v1.json",
        "quarantine-headers.v1.json",
    }


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_2020_12_and_named_by_its_id(name: str, schemas: dict[str, dict[str, Any]]) -> None:
    schema = schemas[name]
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("/" + name)
    assert len(schema.get("examples", [])) >= 2, "at least two realistic examples per schema"


@pytest.mark.parametrize(("name", "index"), EXAMPLES)
def test_example_validates(
    name: str, index: int, schemas: dict[str, dict[str, Any]], validator_for: Callable[[str], Any]
) -> None:
    errors = [
        f"{e.json_path}: {e.message}"
        for e in validator_for(name).iter_errors(schemas[name]["examples"][index])
    ]
    assert errors == []


def _subschemas(node: Any, pointer: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield pointer, node
        for key, value in node.items():
            if key not in ("examples", "enum", "const"):
                yield from _subschemas(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _subschemas(value, f"{pointer}/{i}")


def test_reporter_personal_fields_are_marked(schemas: dict[str, dict[str, Any]]) -> None:
    reporter = schemas["case-event.v1.json"]["$defs"]["reporter"]["properties"]
    marked = {k for k, v in reporter.items() if v.get("x-personal-data") is True}
    assert marked == {"name", "phone", "id_number"}


def test_the_public_feeds_carry_no_personal_data(schemas: dict[str, dict[str, Any]]) -> None:
    for name in ("lifecycle-event.v1.json", "dispatch-order.v1.json", "signed-tree-head.v1.json"):
        marked = [p for p, s in _subschemas(schemas[name]) if s.get("x-personal-data")]
        text = json.dumps(schemas[name])
        assert marked == [] and "#/$defs/reporter" not in text, name


def test_every_utc_field_demands_z(schemas: dict[str, dict[str, Any]]) -> None:
    utc = schemas["case-event.v1.json"]["$defs"]["utc_time"]
    validator = Draft202012Validator(utc)
    assert validator.is_valid("2026-03-01T02:15:30Z")
    assert validator.is_valid("2026-03-01T02:15:30.204000Z")
    assert not validator.is_valid("2026-03-01T10:15:30+08:00")
    assert not validator.is_valid("2026-03-01 02:15:30")


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("2026-03-01T02:15:30Z", True),
        ("2026-03-01T10:15:30.123456789+08:00", True),
        ("2026-02-30T02:15:30Z", False),
        ("2026-03-01T02:15:30", False),
        ("20260301101530", False),
    ],
)
def test_the_date_time_format_is_really_checked(
    text: str, valid: bool, is_date_time: Callable[[object], bool]
) -> None:
    assert is_date_time(text) is valid


def test_no_schema_file_is_left_without_an_id_base_shared_by_all(schemas: dict[str, dict[str, Any]]) -> None:
    bases = {s["$id"].rsplit("/", 1)[0] for s in schemas.values()}
    assert len(bases) == 1, "cross-file $refs are relative: every schema must share one base"


def test_validators_check_formats(
    schemas: dict[str, dict[str, Any]], validator_for: Callable[[str], Any]
) -> None:
    headers = dict(schemas["cloudevent-headers.v1.json"]["examples"][0])
    assert validator_for("cloudevent-headers.v1.json").is_valid(headers)
    headers["ce_time"] = "2026-02-30T02:15:31Z"
    assert not validator_for("cloudevent-headers.v1.json").is_valid(headers)
    event = json.loads(json.dumps(schemas["case-event.v1.json"]["examples"][0]))
    event["event_id"] = "0b9f3c1e-6d2a-4c8e-9a51-3f0e2d7b8c4"
    assert not validator_for("case-event.v1.json").is_valid(event)
