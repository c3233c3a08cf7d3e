"""The case taxonomy (contracts/taxonomy/categories.v1.json) as the worker's category picker needs
it: every category with its Chinese and English names and its group's, searchable on the phone."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE = Path("taxonomy") / "categories.v1.json"


def contracts_dir(start: Path = Path(__file__).resolve()) -> Path:
    """The `contracts` folder of the checkout or image this code runs from."""
    for parent in start.parents:
        if (parent / "contracts" / FILE).is_file():
            return parent / "contracts"
    raise FileNotFoundError(f"no contracts/{FILE} above {start}")


@dataclass(frozen=True)
class Taxonomy:
    version: str
    categories: list[dict[str, Any]]

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(c["code"] for c in self.categories)

    @classmethod
    def load(cls, path: Path | None = None) -> Taxonomy:
        doc = json.loads((path or contracts_dir() / FILE).read_text(encoding="utf-8"))
        return cls(
            version=str(doc["version"]),
            categories=[
                {
                    "code": c["code"],
                    "zh": c["zh"],
                    "en": c["en"],
                    "group": g["code"],
                    "group_zh": g["zh"],
                    "group_en": g["en"],
                }
                for g in doc["groups"]
                for c in g["categories"]
            ],
        )
