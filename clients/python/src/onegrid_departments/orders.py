"""Order messages (`dispatch-order.v1.json`): the Kafka value of `dispatch.orders.<dept>.v1` and the
body of a webhook delivery are the same JSON object.

`decode_order` checks what a department's system relies on (ids, kind, deadlines) and keeps the rest
of the case as plain data, so a field added later in a compatible version never breaks a receiver.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

KINDS = ("assign", "whistle", "assist")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DEPT = re.compile(r"^[a-z][a-z0-9_-]{1,40}$")


class OrderInvalid(ValueError):
    """The bytes are not an order message; answer a webhook 422, set a Kafka record aside."""


@dataclass(frozen=True)
class Order:
    order_id: str
    case_id: str
    department: str
    hop: int
    kind: str
    issued_at: datetime
    acknowledge_by: datetime | None
    resolve_by: datetime | None
    instructions: str | None
    case: dict[str, Any]
    routing: dict[str, Any]
    raw: dict[str, Any]

    @property
    def title(self) -> str:
        return str(self.case.get("title") or "")

    @property
    def category_code(self) -> str | None:
        category = self.case.get("category") or {}
        return category.get("code") if isinstance(category, dict) else None


def _time(value: Any, name: str, *, optional: bool = False) -> datetime | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise OrderInvalid(f"{name} must be an RFC 3339 time, got {value!r}")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise OrderInvalid(f"{name}: {e}") from e
    if t.tzinfo is None:
        raise OrderInvalid(f"{name} has no UTC offset: {value!r}")
    return t


def _uuid(d: dict[str, Any], name: str) -> str:
    v = d.get(name)
    if not isinstance(v, str) or not _UUID.match(v):
        raise OrderInvalid(f"{name} must be a lower-case UUID, got {v!r}")
    return v


def decode_order(data: bytes | str | dict[str, Any]) -> Order:
    """An `Order` from the raw bytes (or already parsed JSON); raises `OrderInvalid` naming the field."""
    if isinstance(data, dict):
        d = data
    else:
        try:
            d = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise OrderInvalid(f"not JSON: {e}") from e
    if not isinstance(d, dict):
        raise OrderInvalid("an order is a JSON object")
    department = d.get("department")
    if not isinstance(department, str) or not _DEPT.match(department):
        raise OrderInvalid(f"department must match {_DEPT.pattern}, got {department!r}")
    kind = d.get("kind")
    if kind not in KINDS:
        raise OrderInvalid(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    hop = d.get("hop")
    if not isinstance(hop, int) or isinstance(hop, bool) or hop < 1:
        raise OrderInvalid(f"hop must be an integer >= 1, got {hop!r}")
    deadlines = d.get("deadlines") or {}
    case = d.get("case")
    if not isinstance(case, dict):
        raise OrderInvalid("case must be an object")
    issued = _time(d.get("issued_at"), "issued_at")
    assert issued is not None
    return Order(
        order_id=_uuid(d, "order_id"),
        case_id=_uuid(d, "case_id"),
        department=department,
        hop=hop,
        kind=kind,
        issued_at=issued,
        acknowledge_by=_time(deadlines.get("acknowledge_by"), "deadlines.acknowledge_by", optional=True),
        resolve_by=_time(deadlines.get("resolve_by"), "deadlines.resolve_by", optional=True),
        instructions=d.get("instructions"),
        case=case,
        routing=d.get("routing") or {},
        raw=d,
    )
