"""Refuse schema changes that would break an existing consumer without a version bump.

Compares every `contracts/schemas/<name>.v<N>.json` with its frozen copy in `contracts/baseline/` and
exits 1, naming the schema and the JSON pointer, when the current schema:

- no longer requires a field that was required (removed or renamed), or newly requires one
  (events already on the topic lack it);
- drops a property or a `$defs` entry;
- narrows what it accepts: a type (`["string","null"]` -> `"string"`, number -> integer), an enum losing
  values, a const, a stricter or new pattern / format / bound (maxLength, minimum, ...), a new
  `allOf` branch or subschema condition, a lost `anyOf`/`oneOf` branch, a changed `$ref` or `$id`;
- tightens `additionalProperties` (or `unevaluatedProperties`) to false or to a schema.

Adding optional properties, widening types, adding enum values and loosening bounds pass. A file
whose name carries a new major version (`x.v2.json`) is a new contract and has no baseline yet.
Annotations (title, description, examples, x-personal-data, ...) are free to change.

    python contracts/compat.py                    # check; exit 0 compatible, 1 breaking
    python contracts/compat.py --update-baseline  # deliberately refreeze the published schemas

Standalone on purpose (standard library only): CI and people run it as a script.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VERSIONED_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*\.v[0-9]+\.json$")

UPPER_BOUNDS = ("maxLength", "maxItems", "maxProperties", "maximum", "exclusiveMaximum")
LOWER_BOUNDS = ("minLength", "minItems", "minProperties", "minimum", "exclusiveMinimum")
# Keywords whose mere appearance, or any change, restricts what validates.
EXACT = ("pattern", "format", "multipleOf", "$ref", "$id", "if", "contentEncoding", "contentMediaType")
# Subschema keywords that restrict when added, and are compared recursively when present in both.
RESTRICTING_SUBSCHEMAS = ("not", "then", "else", "contains", "propertyNames", "items")
OPEN_WORLD = ("additionalProperties", "unevaluatedProperties", "unevaluatedItems")


@dataclass(frozen=True)
class Breach:
    """One change that breaks consumers: where (schema file and JSON pointer) and what."""

    schema: str
    pointer: str
    problem: str

    def __str__(self) -> str:
        return f"{self.schema}#{self.pointer}: {self.problem}"


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _same(a: Any, b: Any) -> bool:
    # JSON equality: Python would call True == 1 and 1 == 1.0 equal.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _as_object(schema: Any) -> dict[str, Any]:
    if schema is True:
        return {}
    if schema is False:
        return {"not": {}}
    return dict(schema)


def _types(schema: dict[str, Any]) -> set[str] | None:
    t = schema.get("type")
    if t is None:
        return None
    return {t} if isinstance(t, str) else set(t)


def compare(old: Any, new: Any, pointer: str = "") -> Iterator[tuple[str, str]]:
    """Yield (JSON pointer, problem) for each way `new` accepts less, or promises less, than `old`."""
    o, n = _as_object(old), _as_object(new)
    yield from _compare_types(o, n, pointer)
    yield from _compare_values(o, n, pointer)
    yield from _compare_bounds(o, n, pointer)
    yield from _compare_objects(o, n, pointer)
    yield from _compare_subschemas(o, n, pointer)


def _compare_types(o: dict[str, Any], n: dict[str, Any], at: str) -> Iterator[tuple[str, str]]:
    old_t, new_t = _types(o), _types(n)
    if new_t is None:
        return
    if old_t is None:
        yield at + "/type", f"type constraint {sorted(new_t)} added"
        return
    for t in sorted(old_t):
        if t not in new_t and not (t == "integer" and "number" in new_t):
            yield (
                at + "/type",
                f"type narrowed: {t!r} no longer accepted ({sorted(old_t)} -> {sorted(new_t)})",
            )


def _compare_values(o: dict[str, Any], n: dict[str, Any], at: str) -> Iterator[tuple[str, str]]:
    old_values = o.get("enum", [o["const"]] if "const" in o else None)
    if "enum" in n:
        if old_values is None:
            yield at + "/enum", "enum added"
        else:
            lost = [v for v in old_values if not any(_same(v, w) for w in n["enum"])]
            if lost:
                yield at + "/enum", f"enum lost values {lost}"
    if "const" in n and not (old_values is not None and all(_same(v, n["const"]) for v in old_values)):
        yield at + "/const", f"const {n['const']!r} added or changed"
    for key in EXACT:
        if key in n and (key not in o or not _same(o[key], n[key])):
            change = "added" if key not in o else f"changed from {o[key]!r}"
            yield f"{at}/{_escape(key)}", f"{key} {change} (now {n[key]!r})"
    if n.get("uniqueItems") is True and o.get("uniqueItems") is not True:
        yield at + "/uniqueItems", "uniqueItems added"


def _compare_bounds(o: dict[str, Any], n: dict[str, Any], at: str) -> Iterator[tuple[str, str]]:
    for key in UPPER_BOUNDS:
        if key in n and (key not in o or n[key] < o[key]):
            yield f"{at}/{key}", f"{key} tightened: {o.get(key, 'none')} -> {n[key]}"
    for key in LOWER_BOUNDS:
        if key in n and (key not in o or n[key] > o[key]):
            yield f"{at}/{key}", f"{key} tightened: {o.get(key, 'none')} -> {n[key]}"


def _compare_objects(o: dict[str, Any], n: dict[str, Any], at: str) -> Iterator[tuple[str, str]]:
    old_req, new_req = set(o.get("required", [])), set(n.get("required", []))
    for name in sorted(old_req - new_req):
        yield at + "/required", f"required field {name!r} no longer required (removed or renamed)"
    for name in sorted(new_req - old_req):
        yield at + "/required", f"field {name!r} newly required: events already published lack it"
    old_props, new_props = o.get("properties", {}), n.get("properties", {})
    for name, sub in old_props.items():
        here = f"{at}/properties/{_escape(name)}"
        if name not in new_props:
            yield here, f"property {name!r} removed"
        else:
            yield from compare(sub, new_props[name], here)
    old_pp, new_pp = o.get("patternProperties", {}), n.get("patternProperties", {})
    for pattern, sub in new_pp.items():
        here = f"{at}/patternProperties/{_escape(pattern)}"
        if pattern in old_pp:
            yield from compare(old_pp[pattern], sub, here)
        else:
            yield here, "patternProperties entry added"
    for pattern in old_pp.keys() - new_pp.keys():
        yield f"{at}/patternProperties/{_escape(pattern)}", "patternProperties entry removed"
    for key in OPEN_WORLD:
        old_ap, new_ap = o.get(key, True), n.get(key, True)
        if new_ap is False and old_ap is not False:
            yield f"{at}/{key}", f"{key} tightened to false"
        elif isinstance(new_ap, dict) and new_ap and (old_ap is True or old_ap == {}):
            yield f"{at}/{key}", f"{key} tightened to a schema"
        elif isinstance(new_ap, dict) and isinstance(old_ap, dict):
            yield from compare(old_ap, new_ap, f"{at}/{key}")
    for name in sorted(n.get("dependentRequired", {}).keys()):
        if not _same(o.get("dependentRequired", {}).get(name), n["dependentRequired"][name]):
            yield f"{at}/dependentRequired/{_escape(name)}", "dependentRequired added or changed"


def _compare_subschemas(o: dict[str, Any], n: dict[str, Any], at: str) -> Iterator[tuple[str, str]]:
    for key in RESTRICTING_SUBSCHEMAS:
        if key in n:
            if key not in o:
                yield f"{at}/{key}", f"{key} added"
            else:
                yield from compare(o[key], n[key], f"{at}/{key}")
    old_prefix, new_prefix = o.get("prefixItems", []), n.get("prefixItems", [])
    for i, sub in enumerate(new_prefix):
        if i < len(old_prefix):
            yield from compare(old_prefix[i], sub, f"{at}/prefixItems/{i}")
        else:
            yield f"{at}/prefixItems/{i}", "prefixItems entry added"
    old_all, new_all = o.get("allOf", []), n.get("allOf", [])
    for i, sub in enumerate(new_all):
        if i < len(old_all):
            yield from compare(old_all[i], sub, f"{at}/allOf/{i}")
        else:
            yield f"{at}/allOf/{i}", "allOf gained a branch"
    for key in ("anyOf", "oneOf"):
        if key not in n:
            continue
        if key not in o:
            # Wrapping the old schema as one branch (typically to make it nullable) only widens.
            if not any(_compatible(o, branch) for branch in n[key]):
                yield f"{at}/{key}", f"{key} added"
            continue
        for i, sub in enumerate(o[key]):
            if i < len(n[key]):
                yield from compare(sub, n[key][i], f"{at}/{key}/{i}")
            else:
                yield f"{at}/{key}/{i}", f"{key} lost a branch"
    for key in ("$defs", "dependentSchemas"):
        old_defs, new_defs = o.get(key, {}), n.get(key, {})
        for name, sub in old_defs.items():
            here = f"{at}/{key}/{_escape(name)}"
            if name not in new_defs:
                yield here, f"{key} entry {name!r} removed (other schemas may $ref it)"
            else:
                yield from compare(sub, new_defs[name], here)
        if key == "dependentSchemas":
            for name in new_defs.keys() - old_defs.keys():
                yield f"{at}/{key}/{_escape(name)}", "dependentSchemas entry added"


def _compatible(old: Any, new: Any) -> bool:
    return next(iter(compare(old, new)), None) is None


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def check_tree(schemas: Path, baseline: Path) -> tuple[list[Breach], list[str]]:
    """Breaches of the published contracts, and the names of schemas not yet frozen (new contracts)."""
    breaches: list[Breach] = []
    for path in sorted(schemas.glob("*.json")):
        if not VERSIONED_NAME.match(path.name):
            breaches.append(Breach(path.name, "", "file name must be <name>.v<major>.json"))
    for frozen in sorted(baseline.glob("*.json")):
        current = schemas / frozen.name
        if not current.exists():
            breaches.append(
                Breach(frozen.name, "", "published schema removed (retire with --update-baseline)")
            )
            continue
        for pointer, problem in compare(_load(frozen), _load(current)):
            breaches.append(Breach(frozen.name, pointer, problem))
    new = sorted(p.name for p in schemas.glob("*.json") if not (baseline / p.name).exists())
    return breaches, new


def update_baseline(schemas: Path, baseline: Path) -> list[str]:
    """Make `baseline` an exact copy of the current schemas; returns what changed."""
    baseline.mkdir(parents=True, exist_ok=True)
    changed = []
    for stale in sorted(baseline.glob("*.json")):
        if not (schemas / stale.name).exists():
            stale.unlink()
            changed.append(f"retired {stale.name}")
    for path in sorted(schemas.glob("*.json")):
        target = baseline / path.name
        if not target.exists() or target.read_bytes() != path.read_bytes():
            shutil.copyfile(path, target)
            changed.append(f"froze {path.name}")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--schemas", type=Path, default=HERE / "schemas")
    parser.add_argument("--baseline", type=Path, default=HERE / "baseline")
    parser.add_argument("--update-baseline", action="store_true", help="deliberately refreeze")
    args = parser.parse_args(argv)
    if args.update_baseline:
        for line in update_baseline(args.schemas, args.baseline) or ["baseline already current"]:
            print(line)
        return 0
    breaches, new = check_tree(args.schemas, args.baseline)
    for name in new:
        print(f"new contract (not frozen yet): {name}")
    for breach in breaches:
        print(f"BREAKING {breach}", file=sys.stderr)
    if breaches:
        print(
            f"{len(breaches)} breaking change(s): publish a new major version (<name>.v<N+1>.json) instead, "
            "or refreeze deliberately with --update-baseline",
            file=sys.stderr,
        )
        return 1
    print(f"compatible: {len(list(args.baseline.glob('*.json')))} published schema(s) checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
