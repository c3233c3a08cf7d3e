"""The CaseEvent Structs and case-event.v1.json have the same shape, field by field, constraint by constraint.

Walks msgspec's type information beside the schema: every object has the same property names, all
required; nullability, enums, patterns, lengths and numeric bounds are equal. A field added, renamed or
retyped on one side only fails here, naming the path.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import msgspec.inspect as mi
import pytest

from onegrid_contracts.case_event import CaseEvent

Schema = dict[str, Any]


def _resolve(root: Schema, node: Schema) -> Schema:
    while "$ref" in node:
        assert node["$ref"].startswith("#/$defs/"), node["$ref"]
        node = root["$defs"][node["$ref"].removeprefix("#/$defs/")]
    return node


def _split_null(root: Schema, node: Schema) -> tuple[Schema, bool]:
    """The schema without its null alternative, and whether it had one."""
    node = _resolve(root, node)
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b != {"type": "null"}]
        assert len(branches) == 1 and len(node["anyOf"]) == 2, node
        return _resolve(root, branches[0]), True
    types = node.get("type")
    if isinstance(types, list) and "null" in types:
        rest = [t for t in types if t != "null"]
        stripped = {**node, "type": rest[0] if len(rest) == 1 else rest}
        if "enum" in stripped:
            stripped["enum"] = [v for v in stripped["enum"] if v is not None]
        return stripped, True
    return node, False


_BOUNDS: dict[type, dict[str, str]] = {
    mi.StrType: {"minLength": "min_length", "maxLength": "max_length", "pattern": "pattern"},
    mi.VarTupleType: {"minItems": "min_length", "maxItems": "max_length"},
    mi.IntType: {"minimum": "ge", "maximum": "le", "exclusiveMinimum": "gt", "exclusiveMaximum": "lt"},
    mi.FloatType: {"minimum": "ge", "maximum": "le", "exclusiveMinimum": "gt", "exclusiveMaximum": "lt"},
}


def _bounds(info: Any, node: Schema) -> dict[str, tuple[Any, Any]]:
    pairs = _BOUNDS.get(type(info), {})
    return {key: (node.get(key), getattr(info, attr)) for key, attr in pairs.items()}


def differences(root: Schema, info: Any, node: Schema, path: str = "$") -> Iterator[str]:
    """Every way the msgspec type `info` and the schema `node` disagree."""
    node, nullable = _split_null(root, node)
    if isinstance(info, mi.UnionType):
        has_none = any(isinstance(t, mi.NoneType) for t in info.types)
        if has_none != nullable:
            yield f"{path}: nullable in {'Struct' if has_none else 'schema'} only"
        others = [t for t in info.types if not isinstance(t, mi.NoneType)]
        if len(others) == 1:
            yield from differences(root, others[0], node, path)
            return
        branches = {
            _resolve(root, b)["properties"]["type"]["const"]: _resolve(root, b) for b in node["oneOf"]
        }
        if {t.tag for t in others} != set(branches):
            yield f"{path}: union tags {sorted(t.tag for t in others)} vs schema {sorted(branches)}"
        for t in others:
            if t.tag in branches:
                yield from differences(root, t, branches[t.tag], f"{path}<{t.tag}>")
        return
    if nullable:
        yield f"{path}: nullable in schema only"
    yield from _leaf_differences(root, info, node, path)


def _leaf_differences(root: Schema, info: Any, node: Schema, path: str) -> Iterator[str]:
    expected = {
        mi.StructType: "object",
        mi.DictType: "object",
        mi.VarTupleType: "array",
        mi.TupleType: "array",
        mi.StrType: "string",
        mi.UUIDType: "string",
        mi.DateTimeType: "string",
        mi.LiteralType: "string",
        mi.IntType: "integer",
        mi.FloatType: "number",
        mi.BoolType: "boolean",
    }[type(info)]
    if node.get("type") != expected:
        yield f"{path}: type {node.get('type')!r} in schema, {expected!r} in Struct"
    for key, (in_schema, in_struct) in _bounds(info, node).items():
        if in_schema != in_struct:
            yield f"{path}: {key} {in_schema!r} in schema, {in_struct!r} in Struct"
    if isinstance(info, mi.UUIDType) and node.get("format") != "uuid":
        yield f"{path}: Struct has a UUID, schema format {node.get('format')!r}"
    if isinstance(info, mi.DateTimeType) and (node.get("format") != "date-time" or info.tz is not True):
        yield f"{path}: date-time must be timezone-aware in the Struct and format date-time in the schema"
    if isinstance(info, mi.LiteralType) and set(info.values) != set(node.get("enum", [])):
        yield f"{path}: enum {node.get('enum')} in schema, {list(info.values)} in Struct"
    if isinstance(info, mi.VarTupleType):
        yield from differences(root, info.item_type, node["items"], path + "[*]")
    if isinstance(info, mi.TupleType):
        prefix = node.get("prefixItems", [])
        if len(prefix) != len(info.item_types) or node.get("maxItems") != len(prefix):
            yield f"{path}: fixed-length array of {len(info.item_types)} in Struct only"
        for i, (t, sub) in enumerate(zip(info.item_types, prefix, strict=False)):
            yield from differences(root, t, sub, f"{path}[{i}]")
    if isinstance(info, mi.StructType):
        yield from _struct_differences(root, info, node, path)


def _struct_differences(root: Schema, info: mi.StructType, node: Schema, path: str) -> Iterator[str]:
    props = dict(node.get("properties", {}))
    if info.tag_field is not None:
        props.pop(info.tag_field, None)
    fields = {f.encode_name: f for f in info.fields}
    for name in sorted(fields.keys() - props.keys()):
        yield f"{path}.{name}: in Struct only"
    for name in sorted(props.keys() - fields.keys()):
        yield f"{path}.{name}: in schema only"
    required = set(node.get("required", [])) - {info.tag_field}
    if required != set(props):
        yield f"{path}: schema leaves {sorted(set(props) - required)} optional"
    if node.get("additionalProperties") is not False:
        yield f"{path}: schema object is open"
    for name in sorted(fields.keys() & props.keys()):
        yield from differences(root, fields[name].type, props[name], f"{path}.{name}")


def test_struct_and_schema_have_the_same_shape(schemas: dict[str, Schema]) -> None:
    root = schemas["case-event.v1.json"]
    assert list(differences(root, mi.type_info(CaseEvent), root)) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda s: s["$defs"]["severity"]["properties"]["level"].update(maximum=5),
            "$.severity.level: maximum",
        ),
        (
            lambda s: s["$defs"]["division"]["properties"].pop("micro_grid"),
            "$.division.micro_grid: in Struct only",
        ),
        (lambda s: s["$defs"]["network"]["enum"].append("wechat"), "$.source.network: enum"),
        (lambda s: s["properties"].update(title={"type": "string"}), "$.title: minLength None in schema"),
        (
            lambda s: s["$defs"]["times"]["properties"].update(reported_at={"type": "string"}),
            "$.times.reported_at",
        ),
        (
            lambda s: s["$defs"]["merge"]["required"].remove("reason"),
            "$.merge: schema leaves ['reason'] optional",
        ),
        (
            lambda s: s["$defs"]["reporter"]["properties"].update(org={"type": "string"}),
            "$.reporter.org: nullable",
        ),
        (lambda s: s["$defs"]["position"].update(maxItems=3), "$.location.area<Polygon>.coordinates[*][*]:"),
    ],
)
def test_the_shape_check_sees_drift(schemas: dict[str, Schema], edit: Any, expected: str) -> None:
    root = copy.deepcopy(schemas["case-event.v1.json"])
    edit(root)
    found = list(differences(root, mi.type_info(CaseEvent), root))
    assert any(d.startswith(expected) for d in found), found
