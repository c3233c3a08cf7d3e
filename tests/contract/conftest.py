"""Shared fixtures: the contract files and strict JSON Schema validators over them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
SCHEMAS = CONTRACTS / "schemas"
_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _is_date_time(value: object) -> bool:
    # jsonschema checks date-time only with an optional package we do not ship; check it here.
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    head, _, rest = value.partition(".")
    if rest:  # fromisoformat in 3.11 takes at most 6 fractional digits
        digits = re.match(r"[0-9]+", rest)
        assert digits is not None
        value = f"{head}.{digits.group()[:6].ljust(6, '0')}{rest[digits.end() :]}"
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def format_checker() -> FormatChecker:
    checker = FormatChecker()
    checker.checks("date-time")(_is_date_time)
    return checker


def load_schemas() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(SCHEMAS.glob("*.json"))}


def schema_registry(schemas: dict[str, dict[str, Any]]) -> Registry:
    resources = [(s["$id"], Resource.from_contents(s)) for s in schemas.values()]
    return Registry().with_resources(resources)


@pytest.fixture(scope="session")
def is_date_time() -> Callable[[object], bool]:
    return _is_date_time


@pytest.fixture(scope="session")
def schemas() -> dict[str, dict[str, Any]]:
    return load_schemas()


@pytest.fixture(scope="session")
def validator_for(schemas: dict[str, dict[str, Any]]) -> Callable[[str], Draft202012Validator]:
    """A validator for the named schema file, with $refs across files and formats checked."""
    registry = schema_registry(schemas)
    checker = format_checker()

    def build(name: str) -> Draft202012Validator:
        return Draft202012Validator(schemas[name], registry=registry, format_checker=checker)

    return build
