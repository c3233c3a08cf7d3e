"""onegrid_contracts.case_event and contracts/schemas/case-event.v1.json say the same thing.

Here: the schema's examples decode into the Structs and re-encode to the same JSON, and the two agree
on what they reject. test_case_event_generated.py: Structs encode to JSON the schema accepts.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from jsonschema import Draft202012Validator

from onegrid_contracts.case_event import CaseEvent, decode_case_event, encode_case_event

NAME = "case-event.v1.json"


@pytest.fixture(scope="module")
def schema(schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return schemas[NAME]


@pytest.fixture(scope="module")
def validator(validator_for: Callable[[str], Draft202012Validator]) -> Draft202012Validator:
    return validator_for(NAME)


def _errors(validator: Draft202012Validator, instance: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(instance)]


def test_schema_examples_decode_and_reencode_unchanged(schema: dict[str, Any]) -> None:
    for example in schema["examples"]:
        event = decode_case_event(json.dumps(example, ensure_ascii=False).encode())
        assert json.loads(encode_case_event(event)) == example


def _paths(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if path[-1:] != ("attributes",):
                yield (*path, key)
                yield from _paths(value, (*path, key))


def _without(example: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    mutated = copy.deepcopy(example)
    node: Any = mutated
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    return mutated


def _rejected_by_struct(instance: Any) -> bool:
    try:
        decode_case_event(json.dumps(instance).encode())
    except msgspec.ValidationError:
        return True
    return False


def test_schema_and_struct_both_reject_any_missing_field(
    schema: dict[str, Any], validator: Draft202012Validator
) -> None:
    example = schema["examples"][2]  # the richest one: merge, linked source, area
    paths = list(_paths(example))
    assert len(paths) >= 60
    for path in paths:
        mutated = _without(example, path)
        assert not validator.is_valid(mutated), f"schema accepts a missing {path}"
        assert _rejected_by_struct(mutated), f"Struct accepts a missing {path}"


MUTATIONS: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("severity 5", lambda e: e["severity"].update(level=5)),
    ("severity 0", lambda e: e["severity"].update(level=0)),
    ("unknown network", lambda e: e["source"].update(network="wechat")),
    ("unknown event type", lambda e: e.update(event_type="case.deleted")),
    ("latitude 91", lambda e: e["location"]["point"].update(lat=91)),
    ("longitude -181", lambda e: e["location"]["original"].update(lon=-181.0)),
    ("local time", lambda e: e["times"].update(reported_at="2026-03-01T10:36:00+08:00")),
    ("district 5 digits", lambda e: e["division"].update(district="32100")),
    ("street 10 digits", lambda e: e["division"].update(street="3210030091")),
    ("unknown tier", lambda e: e["division"].update(tier="province")),
    ("case id not a uuid", lambda e: e.update(case_id="YZ-2026-000123")),
    ("empty title", lambda e: e.update(title="")),
    ("title too long", lambda e: e.update(title="长" * 201)),
    ("ring of three", lambda e: e["location"]["area"]["coordinates"][0].__delitem__(slice(1, 3))),
    ("circle geometry", lambda e: e["location"]["area"].update(type="Circle")),
    ("position with altitude", lambda e: e["location"]["area"]["coordinates"][0][0].append(9.0)),
    ("negative offset", lambda e: e["source"].update(offset=-1)),
    ("bad merge reason", lambda e: e["merge"].update(reason="Merge Spatial")),
    ("negative distance", lambda e: e["merge"].update(distance_m=-1)),
    ("severity as text", lambda e: e["severity"].update(level="2")),
    ("inside_city as text", lambda e: e["location"].update(inside_city="true")),
    ("attributes a list", lambda e: e.update(attributes=[])),
    ("unknown coordinate system", lambda e: e["location"]["original"].update(system="ITRF")),
]


@pytest.mark.parametrize(("label", "mutate"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_schema_and_struct_agree_on_rejections(
    label: str,
    mutate: Callable[[dict[str, Any]], None],
    schema: dict[str, Any],
    validator: Draft202012Validator,
) -> None:
    event = copy.deepcopy(schema["examples"][2])
    mutate(event)
    assert not validator.is_valid(event), label
    assert _rejected_by_struct(event), label


def test_decoding_tolerates_fields_added_by_a_later_minor_revision(schema: dict[str, Any]) -> None:
    event = copy.deepcopy(schema["examples"][0])
    event["priority_hint"] = "high"
    event["location"]["accuracy_m"] = 15
    assert decode_case_event(json.dumps(event).encode()) == decode_case_event(
        json.dumps(schema["examples"][0]).encode()
    )


def test_every_field_is_required_and_encoded() -> None:
    def walk(info: Any) -> Iterator[mi.Field]:
        if isinstance(info, mi.StructType):
            for f in info.fields:
                yield f
                yield from walk(f.type)
        elif isinstance(info, mi.UnionType):
            for t in info.types:
                yield from walk(t)
        elif isinstance(info, mi.VarTupleType):
            yield from walk(info.item_type)

    fields = list(walk(mi.type_info(CaseEvent)))
    assert len(fields) > 50
    assert [f.name for f in fields if not f.required] == []
    assert CaseEvent.__struct_config__.omit_defaults is False
