"""The registry as slowly changing dimensions (type 2) for BI: every version of every department,
division, grid and staff record, valid from its `updated_at` until the next version's.

Contract: `version_of(record)` reads one registry record (contracts/schemas/registry-record.v1.json);
`rows(kind, versions, personal_data=...)` flattens the versions of one kind into table rows in a
stable order, with the validity interval and the `version` string (`<updated_at>#<revision>`, the
form lifecycle events carry in `versions.grid_version`, so a fact joins the grid version it was
decided with). Personal fields (the schema's `x-personal-data`: a staff member's name and phone)
are masked unless the caller holds personal-data rights: the name to its first character and `*`,
the phone to null. Geometry is left out: BI joins on codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

KINDS: dict[str, str] = {  # export name -> registry kind
    "departments": "department",
    "divisions": "division",
    "grids": "grid",
    "staff": "staff",
}
# The flattened columns of each kind, after the common ones.
FIELDS: dict[str, tuple[str, ...]] = {
    "department": ("name", "active", "tier", "division_code", "parent_code", "category_codes"),
    "division": ("name", "active", "level", "parent_code"),
    "grid": ("name", "active", "level", "community_code", "parent_grid_code", "special_kind"),
    "staff": ("name", "active", "role", "phone", "grid_codes", "department"),
}
LIST_FIELDS = frozenset({"category_codes", "grid_codes"})
BOOL_FIELDS = frozenset({"active"})
COMMON = ("code", "revision", "version", "valid_from", "valid_to", "current")
PERSONAL: dict[str, frozenset[str]] = {"staff": frozenset({"name", "phone"})}


class InvalidRecord(ValueError):
    """A registry record without what a dimension needs (kind, code, revision, updated_at)."""


@dataclass(frozen=True)
class Version:
    kind: str
    code: str
    revision: int
    valid_from: datetime
    record: dict[str, Any]

    @property
    def version(self) -> str:
        return f"{self.record['updated_at']}#{self.revision}"


def version_of(record: dict[str, Any]) -> Version:
    try:
        kind, code, revision = str(record["kind"]), str(record["code"]), int(record["revision"])
        valid_from = datetime.fromisoformat(str(record["updated_at"]).replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidRecord(f"registry record lacks a usable {e}") from e
    if valid_from.tzinfo is None:
        raise InvalidRecord(f"updated_at {record['updated_at']!r} has no time zone")
    return Version(kind, code, revision, valid_from, record)


def mask_name(name: str) -> str:
    return name[:1] + "*" if name else name


def masked(kind: str, record: dict[str, Any], *, personal_data: bool) -> dict[str, Any]:
    if personal_data or kind not in PERSONAL:
        return record
    out = dict(record)
    if "name" in out and isinstance(out["name"], str):
        out["name"] = mask_name(out["name"])
    if "phone" in out:
        out["phone"] = None
    return out


def columns(kind: str) -> tuple[str, ...]:
    return COMMON + FIELDS[kind]


def rows(
    kind: str,
    versions: Iterable[tuple[Version, datetime | None]],
    *,
    personal_data: bool,
) -> list[dict[str, Any]]:
    """One row per (version, valid_to), ordered by code and revision; `current` marks the open one."""
    out: list[dict[str, Any]] = []
    for v, valid_to in sorted(versions, key=lambda x: (x[0].code, x[0].revision)):
        rec = masked(kind, v.record, personal_data=personal_data)
        row: dict[str, Any] = {
            "code": v.code,
            "revision": v.revision,
            "version": v.version,
            "valid_from": v.valid_from,
            "valid_to": valid_to,
            "current": valid_to is None,
        }
        for f in FIELDS[kind]:
            value = rec.get(f)
            row[f] = tuple(value) if f in LIST_FIELDS and value is not None else value
        out.append(row)
    return out


def intervals(
    versions: Sequence[Version], deleted_at: datetime | None = None
) -> list[tuple[Version, datetime | None]]:
    """Validity intervals of one record's versions: each until the next version's `valid_from`,
    the last until the record was deleted (or open)."""
    ordered = sorted(versions, key=lambda v: v.revision)
    ends: list[datetime | None] = [v.valid_from for v in ordered[1:]]
    ends.append(deleted_at)
    return list(zip(ordered, ends, strict=True))
