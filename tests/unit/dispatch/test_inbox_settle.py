"""The inbox routes nothing while the registry view is behind the registry (its table not current):
the batch is retried with backoff (Backpressure), never decided on rules or departments not yet
applied; once the view holds everything committed, the batch goes to the desk."""

from __future__ import annotations

from typing import Any

import pytest

from dispatch.handlers import Inbox
from onegrid.kafka.memory import MemoryRecord
from onegrid.kafka.policy import Backpressure


class Desk:
    def __init__(self) -> None:
        self.applied: list[list[Any]] = []

    async def apply(self, changes: list[Any]) -> list[Any]:
        self.applied.append(changes)
        return []


def record() -> MemoryRecord:
    return MemoryRecord(topic="cases", partition=0, offset=0, key=b"k", value=b"not a case", headers=())


async def test_a_batch_waits_while_the_registry_view_is_behind() -> None:
    asked: list[float] = []
    current = False

    async def settle(timeout_s: float) -> bool:
        asked.append(timeout_s)
        return current

    desk = Desk()
    inbox = Inbox(desk, cases_topic="cases", feedback_topic="feedback", settle=settle)  # type: ignore[arg-type]
    with pytest.raises(Backpressure):
        await inbox.handle([record()])
    assert desk.applied == [] and asked == [inbox.settle_s]
    current = True
    result = await inbox.handle([record()])
    assert desk.applied == [[]]  # the malformed case is dead-lettered, not routed
    assert [d.reason for d in result.dead_letters] == ["dispatch.case_invalid"]
