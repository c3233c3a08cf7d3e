"""contracts/compat.py passes on the published tree, catches each breaking change, allows compatible ones."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def _load_compat() -> ModuleType:
    spec = importlib.util.spec_from_file_location("contracts_compat", CONTRACTS / "compat.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


compat = _load_compat()

BASE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://onegrid.cn/contracts/schemas/thing.v1.json",
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "note": {"type": ["string", "null"], "maxLength": 100},
        "size": {"type": "number", "minimum": 0},
        "kind": {"type": "string", "enum": ["a", "b"]},
        "code": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "extra": {"type": "object"},
        "ref": {"$ref": "#/$defs/point"},
    },
    "required": ["id", "note", "kind"],
    "additionalProperties": False,
    "$defs": {"point": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"]}},
}

Edit = Callable[[dict[str, Any]], None]


def _p(schema: dict[str, Any], name: str) -> dict[str, Any]:
    prop: dict[str, Any] = schema["properties"][name]
    return prop


BREAKING: list[tuple[str, Edit, str]] = [
    ("required field removed", lambda s: s["required"].remove("note"), "/required"),
    ("required field renamed", lambda s: s.update(required=["id", "remark", "kind"]), "/required"),
    ("property removed", lambda s: s["properties"].pop("code"), "/properties/code"),
    (
        "nullable made non-null",
        lambda s: _p(s, "note").update(type="string"),
        "/properties/note/type",
    ),
    ("number to integer", lambda s: _p(s, "size").update(type="integer"), "/properties/size/type"),
    ("enum lost a value", lambda s: _p(s, "kind").update(enum=["a"]), "/properties/kind/enum"),
    (
        "pattern added",
        lambda s: _p(s, "code").update(pattern="^[0-9]+$"),
        "/properties/code/pattern",
    ),
    (
        "maxLength lowered",
        lambda s: _p(s, "note").update(maxLength=50),
        "/properties/note/maxLength",
    ),
    ("maxLength added", lambda s: _p(s, "code").update(maxLength=9), "/properties/code/maxLength"),
    ("minimum raised", lambda s: _p(s, "size").update(minimum=1), "/properties/size/minimum"),
    ("format added", lambda s: _p(s, "code").update(format="uuid"), "/properties/code/format"),
    ("const added", lambda s: _p(s, "code").update(const="x"), "/properties/code/const"),
    (
        "additionalProperties tightened",
        lambda s: _p(s, "extra").update(additionalProperties=False),
        "/properties/extra/additionalProperties",
    ),
    (
        "additionalProperties to a schema",
        lambda s: _p(s, "extra").update(additionalProperties={"type": "string"}),
        "/properties/extra/additionalProperties",
    ),
    ("new required field", lambda s: s["required"].append("code"), "/required"),
    (
        "items narrowed",
        lambda s: _p(s, "tags")["items"].update(minLength=1),
        "/properties/tags/items",
    ),
    ("nested property removed", lambda s: s["$defs"]["point"]["properties"].pop("lat"), "/$defs/point"),
    ("$defs entry removed", lambda s: s["$defs"].pop("point"), "/$defs/point"),
    (
        "$ref changed",
        lambda s: _p(s, "ref").update({"$ref": "#/$defs/other"}),
        "/properties/ref/$ref",
    ),
    ("$id changed", lambda s: s.update({"$id": "https://onegrid.cn/x.v1.json"}), "/$id"),
    ("allOf branch added", lambda s: s.update(allOf=[{"required": ["code"]}]), "/allOf/0"),
    (
        "made non-null via anyOf",
        lambda s: s["properties"].update(note={"type": "string"}),
        "/properties/note",
    ),
    ("whole schema false", lambda s: s["properties"].update(extra=False), "/properties/extra"),
]

_POINT = {"$ref": "#/$defs/point"}
COMPATIBLE: list[tuple[str, Edit]] = [
    ("optional property added", lambda s: s["properties"].update(color={"type": "string"})),
    ("enum gained a value", lambda s: _p(s, "kind")["enum"].append("c")),
    ("made nullable", lambda s: _p(s, "code").update(type=["string", "null"])),
    (
        "ref made nullable",
        lambda s: s["properties"].update(ref={"anyOf": [{"$ref": "#/$defs/point"}, {"type": "null"}]}),
    ),
    ("maxLength raised", lambda s: _p(s, "note").update(maxLength=500)),
    ("maxLength dropped", lambda s: _p(s, "note").pop("maxLength")),
    ("minimum lowered", lambda s: _p(s, "size").update(minimum=-10)),
    ("descriptions and examples", lambda s: s.update(description="new words", examples=[{}])),
    ("personal-data marking", lambda s: _p(s, "note").update({"x-personal-data": True})),
    ("$defs entry added", lambda s: s["$defs"].update(other={"type": "string"})),
    ("required field stays", lambda s: s["required"].reverse()),
]


@pytest.mark.parametrize(("label", "edit", "pointer"), BREAKING, ids=[b[0] for b in BREAKING])
def test_breaking_change_is_caught_with_its_pointer(label: str, edit: Edit, pointer: str) -> None:
    new = copy.deepcopy(BASE)
    edit(new)
    found = list(compat.compare(BASE, new))
    assert found, f"{label} went unnoticed"
    assert any(p.startswith(pointer) for p, _ in found), found


@pytest.mark.parametrize(("label", "edit"), COMPATIBLE, ids=[c[0] for c in COMPATIBLE])
def test_compatible_change_passes(label: str, edit: Edit) -> None:
    new = copy.deepcopy(BASE)
    edit(new)
    assert list(compat.compare(BASE, new)) == [], label


def test_widening_integer_to_number_passes() -> None:
    old = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert list(compat.compare(old, {"type": "object", "properties": {"n": {"type": "number"}}})) == []


def test_the_published_tree_is_compatible_with_its_baseline() -> None:
    breaches, _ = compat.check_tree(CONTRACTS / "schemas", CONTRACTS / "baseline")
    assert [str(b) for b in breaches] == []


def test_every_published_schema_is_frozen() -> None:
    schemas = sorted(p.name for p in (CONTRACTS / "schemas").glob("*.json"))
    frozen = sorted(p.name for p in (CONTRACTS / "baseline").glob("*.json"))
    assert schemas == frozen, "run `python contracts/compat.py --update-baseline` when publishing"


def _tree(tmp_path: Path, baseline: dict[str, Any], current: dict[str, Any]) -> tuple[Path, Path]:
    schemas, frozen = tmp_path / "schemas", tmp_path / "baseline"
    for folder, content in ((frozen, baseline), (schemas, current)):
        folder.mkdir()
        for name, schema in content.items():
            (folder / name).write_text(json.dumps(schema), encoding="utf-8")
    return schemas, frozen


def test_a_new_major_version_is_a_new_contract(tmp_path: Path) -> None:
    v2 = copy.deepcopy(BASE)
    v2["properties"].pop("code")
    schemas, frozen = _tree(tmp_path, {"thing.v1.json": BASE}, {"thing.v1.json": BASE, "thing.v2.json": v2})
    breaches, new = compat.check_tree(schemas, frozen)
    assert breaches == [] and new == ["thing.v2.json"]


def test_removing_a_published_schema_or_an_unversioned_name_fails(tmp_path: Path) -> None:
    schemas, frozen = _tree(tmp_path, {"thing.v1.json": BASE}, {"thing.json": BASE})
    breaches, _ = compat.check_tree(schemas, frozen)
    assert {(b.schema, b.problem.split(" ")[0]) for b in breaches} == {
        ("thing.json", "file"),
        ("thing.v1.json", "published"),
    }


def test_cli_fails_naming_schema_and_pointer_then_refreezes(tmp_path: Path) -> None:
    narrowed = copy.deepcopy(BASE)
    narrowed["properties"]["kind"]["enum"] = ["a"]
    schemas, frozen = _tree(tmp_path, {"thing.v1.json": BASE}, {"thing.v1.json": narrowed})
    cmd = [sys.executable, str(CONTRACTS / "compat.py"), "--schemas", str(schemas), "--baseline", str(frozen)]
    failed = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert failed.returncode == 1
    assert "thing.v1.json#/properties/kind/enum" in failed.stderr
    refreeze = subprocess.run([*cmd, "--update-baseline"], capture_output=True, text=True, check=False)
    assert refreeze.returncode == 0 and "froze thing.v1.json" in refreeze.stdout
    assert subprocess.run(cmd, capture_output=True, check=False).returncode == 0
