"""Every msgspec type that reads a contract agrees with its JSON Schema: the types declared once in
`onegrid_contracts` and the partial views services keep on purpose (dispatch decodes no reporter data;
intake's Open311 status reads three fields of a lifecycle event). Each field a type names exists in the
schema; a field a type requires is required by the schema (else a valid message would be refused);
a closed set of values (`Literal`) admits every value the schema's `enum` allows."""

from __future__ import annotations

import typing
from typing import Any

import msgspec
import pytest
from msgspec import inspect as mi

from dispatch.domain.facts import CaseFacts, Feedback
from onegrid_contracts import case_event, lifecycle, schema
from open311.domain import status as open311_status

Json = dict[str, Any]

VIEWS: list[tuple[type[msgspec.Struct], str]] = [
    (case_event.CaseEvent, "case-event.v1.json"),
    (lifecycle.LifecycleEvent, "lifecycle-event.v1.json"),
    (CaseFacts, "case-event.v1.json"),
    (Feedback, "feedback.v1.json"),
    (open311_status._Lifecycle, "lifecycle-event.v1.json"),
    (open311_status._CaseEvent, "case-event.v1.json"),
]


def _resolve(node: Json, document: Json) -> tuple[Json, Json]:
    """The node a `$ref` points to (inside the document or in another schema file), and its document."""
    while "$ref" in node:
        target, _, fragment = node["$ref"].partition("#")
        if target:
            document = schema(target.rsplit("/", 1)[-1])
        node = document
        for token in filter(None, fragment.split("/")):
            node = node[token]
    return node, document


def _alternatives(node: Json, document: Json) -> list[tuple[Json, Json]]:
    """The schemas a value may match: through `$ref`, `anyOf`/`oneOf`/`allOf` and array items."""
    node, document = _resolve(node, document)
    found = [(node, document)]
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in node.get(key, []):
            found += _alternatives(sub, document)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            found += _alternatives(node[key], document)
    if isinstance(node.get("prefixItems"), list):
        for sub in node["prefixItems"]:
            found += _alternatives(sub, document)
    return found


def _inner(t: mi.Type) -> list[mi.Type]:
    """The types a field's type is made of (unions, optionals, containers, constraints unwrapped)."""
    if isinstance(t, mi.Metadata):
        return _inner(t.type)
    if isinstance(t, mi.UnionType):
        return [x for sub in t.types for x in _inner(sub)]
    if isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        return [t, *_inner(t.item_type)]
    if isinstance(t, mi.TupleType):
        return [t, *(x for sub in t.item_types for x in _inner(sub))]
    if isinstance(t, mi.DictType):
        return [t, *_inner(t.value_type)]
    return [t]


def _check(struct: mi.StructType, node: Json, document: Json, where: str) -> list[str]:
    candidates = _alternatives(node, document)
    objects = [(n, d) for n, d in candidates if "properties" in n]
    if not objects and any(n.get("type") == "object" for n, _ in candidates):
        # An open object (free-form attributes): a type may read keys of it, none of them required.
        return [
            f"{where}.{f.encode_name}: required here, free-form in the schema"
            for f in struct.fields
            if f.required
        ]
    if struct.tag_field is not None:  # a tagged union member: the schema alternative with its tag
        objects = [
            (n, d) for n, d in objects if n["properties"].get(struct.tag_field, {}).get("const") == struct.tag
        ] or objects
    assert objects, f"{where}: the schema has no object here"
    problems = []
    for field in struct.fields:
        name = field.encode_name
        having = [(n, d) for n, d in objects if name in n["properties"]]
        if not having:
            problems.append(f"{where}.{name}: not in the schema")
            continue
        if field.required and not any(name in n.get("required", []) for n, _ in having):
            problems.append(f"{where}.{name}: required here, optional in the schema")
        for n, d in having:
            for t in _inner(field.type):
                if isinstance(t, mi.StructType):
                    problems += _check(t, n["properties"][name], d, f"{where}.{name}")
                elif isinstance(t, mi.LiteralType):
                    allowed = set(t.values)
                    for alt, _ in _alternatives(n["properties"][name], d):
                        missing = set(alt.get("enum", [])) - allowed - {None}
                        if missing:
                            problems.append(f"{where}.{name}: the schema also allows {sorted(missing)}")
    return problems


@pytest.mark.parametrize(("view", "schema_file"), VIEWS, ids=lambda v: getattr(v, "__qualname__", v))
def test_the_type_agrees_with_its_schema(view: type[msgspec.Struct], schema_file: str) -> None:
    info = mi.type_info(view)
    assert isinstance(info, mi.StructType)
    document = schema(schema_file)
    assert _check(info, document, document, view.__qualname__) == []


@pytest.mark.parametrize(("view", "schema_file"), VIEWS, ids=lambda v: getattr(v, "__qualname__", v))
def test_every_example_of_the_schema_decodes_into_the_type(
    view: type[msgspec.Struct], schema_file: str
) -> None:
    examples = schema(schema_file)["examples"]
    assert examples
    for example in examples:
        msgspec.json.decode(msgspec.json.encode(example), type=view)


class _Actor(msgspec.Struct):
    kind: typing.Literal["system", "staff", "department"]


class _Drifted(msgspec.Struct):
    case_id: str
    colour: str
    deadline_id: str
    actor: _Actor


def test_the_checker_finds_drift() -> None:
    document = schema("lifecycle-event.v1.json")
    problems = _check(typing.cast(mi.StructType, mi.type_info(_Drifted)), document, document, "_Drifted")
    assert problems == [
        "_Drifted.colour: not in the schema",
        "_Drifted.deadline_id: required here, optional in the schema",
        "_Drifted.actor.kind: the schema also allows ['citizen']",
    ]
