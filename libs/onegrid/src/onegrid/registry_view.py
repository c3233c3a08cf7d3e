"""Every service's view of the grid registry, rebuilt from the compacted `grid.registry.v1` topic.

Keys are "<kind>:<code>"; values are the full current record as JSON; a null value is a tombstone.
The view is read at start from offset zero and then follows changes live. Consumers that need the
spatial index subscribe to changes with `on_change` and rebuild lazily.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from onegrid.kafka import BatchResult, Record

ChangeListener = Callable[[str, str, dict[str, Any] | None], None]


class RegistryView:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.listeners: list[ChangeListener] = []
        self.version = 0  # bumps with every applied change: cheap "has anything changed?"

    def get(self, kind: str, code: str) -> dict[str, Any] | None:
        return self.records.get(kind, {}).get(code)

    def all(self, kind: str) -> dict[str, dict[str, Any]]:
        return self.records.get(kind, {})

    def apply(self, key: str, value: bytes | None) -> None:
        kind, _, code = key.partition(":")
        if not code:
            raise ValueError(f"registry key {key!r} is not <kind>:<code>")
        bucket = self.records.setdefault(kind, {})
        record = None if value is None else json.loads(value)
        if record is None:
            bucket.pop(code, None)
        else:
            bucket[code] = record
        self.version += 1
        for listener in self.listeners:
            listener(kind, code, record)

    async def handle(self, records: Sequence[Record]) -> BatchResult:
        """A consumer-loop handler: apply each change in order. Idempotent (last write wins)."""
        for r in records:
            if r.key is None:
                continue
            self.apply(r.key.decode(), r.value)
        return BatchResult()
