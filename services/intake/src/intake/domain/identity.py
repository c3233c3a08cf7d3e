"""Deterministic identities: the same source record always yields the same case and event ids.

This is what makes replays harmless: re-reading a topic re-derives the ids it derived before, and
every consumer deduplicates on them.
"""

from __future__ import annotations

import uuid

from onegrid.ids import uuid5

NAMESPACE = uuid.UUID("6f1c9a52-3f7e-4c0a-9d55-0b7c2f1e8a31")


def case_id_for(network: str, source_id: str) -> uuid.UUID:
    """The case a source record opens when it is the first report of its incident."""
    return uuid5(NAMESPACE, f"{network}:{source_id}")


def event_id_for(network: str, source_id: str, intent: str, seq: str = "") -> uuid.UUID:
    """The event a source record produces; `seq` tells apart several events of one record."""
    return uuid5(NAMESPACE, f"event:{network}:{source_id}:{intent}:{seq}")
