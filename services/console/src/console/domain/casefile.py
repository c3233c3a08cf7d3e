"""A case's page: its audit trail as rows to show, and the traces it took part in.

Trail entries are the audit API's (GET /v1/cases/{id}/story): `seq`, `recorded_at`, `topic`,
`partition`, `offset`, `event_type`, `actor`, `trace_id`, `headers`, ... The trace ids are the
entries' `trace_id`, or else the trace id of their `traceparent` header, in order of first use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

Json = dict[str, Any]
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_NO_TRACE = "0" * 32


def entry_trace_id(entry: Json) -> str | None:
    tid = entry.get("trace_id")
    if not tid:
        m = _TRACEPARENT.match(str((entry.get("headers") or {}).get("traceparent", "")).strip().lower())
        tid = m.group(1) if m else None
    return None if not tid or tid == _NO_TRACE else str(tid).lower()


def trace_ids(entries: Iterable[Json]) -> list[str]:
    seen: list[str] = []
    for e in entries:
        tid = entry_trace_id(e)
        if tid and tid not in seen:
            seen.append(tid)
    return seen


def trail_rows(entries: Iterable[Json]) -> list[Json]:
    """The trail as the page shows it: what happened, where it was recorded, who did it."""
    rows = []
    for e in entries:
        headers = e.get("headers") or {}
        rows.append(
            {
                "seq": e.get("seq"),
                "recorded_at": e.get("recorded_at"),
                "event_type": e.get("event_type"),
                "topic": e.get("topic"),
                "position": f"{e.get('topic')}/{e.get('partition')}/{e.get('offset')}",
                "actor": e.get("actor"),
                "source": e.get("source"),
                "trace_id": entry_trace_id(e),
                "reason": headers.get("quarantine_reason") or headers.get("dlq_reason"),
                "leaf_hash": e.get("leaf_hash"),
            }
        )
    return rows
