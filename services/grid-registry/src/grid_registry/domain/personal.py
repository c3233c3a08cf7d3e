"""Personal data in registry records (a staff member's name and phone): which fields, and how they
are shown to roles without personal-data rights (masked, never dropped, so a record keeps its shape).

The fields are those the contract marks `x-personal-data` (contracts/schemas/registry-record.v1.json),
so a field marked later is masked without a change here.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from onegrid_contracts import schema as contract_schema

Json = dict[str, Any]


@cache
def personal_fields() -> dict[str, frozenset[str]]:
    """kind -> the fields of that kind marked x-personal-data."""
    schema = contract_schema("registry-record.v1.json")
    out = {}
    for kind, definition in schema["$defs"].items():
        marked = {f for f, spec in definition.get("properties", {}).items() if spec.get("x-personal-data")}
        if marked:
            out[kind] = frozenset(marked)
    return out


def mask_value(value: Any) -> Any:
    """`王建国` -> `王**`, `13805271234` -> `*******1234`: enough to tell two apart, not to reach them."""
    if not isinstance(value, str) or not value:
        return value
    if any(c.isdigit() for c in value) and len(value) > 4:
        return "*" * (len(value) - 4) + value[-4:]
    return value[0] + "*" * (len(value) - 1)


def masked(record: Json) -> Json:
    """The record with its personal fields masked (a copy; records of other kinds unchanged)."""
    fields = personal_fields().get(str(record.get("kind")), frozenset())
    if not fields.intersection(record):
        return record
    return {k: (mask_value(v) if k in fields else v) for k, v in record.items()}
