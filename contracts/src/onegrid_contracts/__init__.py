"""OneGrid's contracts in Python: the one way to find the files of `contracts/` (JSON Schemas, the
taxonomy), and the message types declared once (`case_event`, `lifecycle`).

The files are found beside this package: `contracts/` in a checkout and in the container images (they
keep the workspace's layout), or the copy an installed wheel carries in `onegrid_contracts/data`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent


@cache
def contracts_dir() -> Path:
    """The folder holding `schemas/` and `taxonomy/`."""
    for candidate in (_HERE / "data", _HERE.parents[1]):
        if (candidate / "schemas").is_dir():
            return candidate
    raise FileNotFoundError(f"no contracts (schemas/, taxonomy/) beside {_HERE}")


def schema_file(name: str) -> Path:
    """A JSON Schema of `contracts/schemas/` by file name (`case-event.v1.json`)."""
    path = contracts_dir() / "schemas" / name
    if not path.is_file():
        raise FileNotFoundError(f"no schema {name} in {path.parent}")
    return path


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_file(name).read_text(encoding="utf-8"))
    return loaded


def schemas() -> list[dict[str, Any]]:
    """Every schema of `contracts/schemas/` (for a registry resolving their `$id`s)."""
    folder = contracts_dir() / "schemas"
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


def taxonomy_file(name: str) -> Path:
    """A file of `contracts/taxonomy/` (`categories.v1.json`, the crosswalk)."""
    return contracts_dir() / "taxonomy" / name
