"""Category codes in our schema examples are real codes of contracts/taxonomy/categories.v1.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def _taxonomy() -> tuple[str, dict[str, str]]:
    doc = json.loads((CONTRACTS / "taxonomy" / "categories.v1.json").read_text(encoding="utf-8"))
    families = {c["code"]: c["family"] for group in doc["groups"] for c in group["categories"]}
    return doc["version"], families


def test_example_categories_exist_with_their_family(schemas: dict[str, dict[str, Any]]) -> None:
    version, families = _taxonomy()
    categories = [e["category"] for e in schemas["case-event.v1.json"]["examples"]]
    categories += [e["case"]["category"] for e in schemas["dispatch-order.v1.json"]["examples"]]
    assert len(categories) >= 5
    for category in categories:
        assert families.get(category["code"]) == category["family"], category
        assert category["taxonomy_version"] == version


def test_example_category_codes_elsewhere_exist(schemas: dict[str, dict[str, Any]]) -> None:
    _, families = _taxonomy()
    codes = [e["dimensions"]["category_code"] for e in schemas["lifecycle-event.v1.json"]["examples"]]
    for record in schemas["registry-record.v1.json"]["examples"]:
        codes += record.get("category_codes", []) + record.get("match", {}).get("category_codes", [])
    assert len(codes) >= 4
    assert [c for c in codes if c not in families] == []
