"""The desk on the in-memory repository: a consumer batch holding several messages of one case is
one unit of work and leaves the same rows, outbox records and answers as one unit per message."""

from __future__ import annotations

import uuid

import pytest

from dispatch.desk import Change, Desk
from dispatch.store import Processed

from . import sample
from .batch_scenario import Scenario, desk, outcomes, run, seeded_uuid4
from .memory_repository import MemoryRepository, MemoryUnit


async def test_a_batch_leaves_the_rows_of_one_unit_per_message(monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = Scenario(sample)
    monkeypatch.setattr(uuid, "uuid4", seeded_uuid4(7))
    one_by_one = MemoryRepository()
    results, orders = await run(desk(one_by_one, sample), scenario, batched=False, orders=None)
    monkeypatch.setattr(uuid, "uuid4", seeded_uuid4(7))
    batch = MemoryRepository()
    batched, _ = await run(desk(batch, sample), scenario, batched=True, orders=orders)

    assert batch.units == 1 and one_by_one.units == len(results)
    assert outcomes(batched) == outcomes(results)
    assert outcomes(results) == [
        "applied",
        "applied",
        "applied",
        "applied",  # the note
        "applied",
        "duplicate:applied",
        "applied",
        "refused:feedback.unknown_order",
        "applied",
        "applied",
        "duplicate:applied",
    ]
    assert batch.tables == one_by_one.tables
    t = batch.tables
    assert {r["state"] for r in t.cases.values()} == {"resolved", "cancelled", "returned"}
    assert len(t.deliveries) == 2  # X and Z went to the department with a webhook
    assert {d["status"] for d in t.deadlines.values()} >= {"running", "cleared"}
    assert len(t.outbox) == len(t.transitions) + len(t.orders)


async def test_a_message_processed_elsewhere_meanwhile_starts_the_unit_again() -> None:
    """Another instance claims a message between this unit's reads and its claim (a rebalance
    mid-batch): nothing of the first attempt is written, and the second sees the message as a repeat."""
    repo = MemoryRepository()
    d = desk(repo, sample)
    scenario = Scenario(sample)
    change = scenario.first()[0]
    raced = RacingRepository(repo, change)
    results = await desk_on(raced, d).apply([change, *scenario.first()[1:]])
    assert [r.outcome for r in results] == ["duplicate:applied", "applied", "applied"]
    assert raced.attempts == 2
    assert len(repo.tables.cases) == 2  # the raced case is the other instance's to register


class RacingRepository:
    """The first unit's claim meets a commit of `change`'s message by another instance."""

    def __init__(self, inner: MemoryRepository, change: Change) -> None:
        self.inner, self.change, self.attempts = inner, change, 0

    def unit(self):  # type: ignore[no-untyped-def]
        self.attempts += 1
        inner, change, first = self.inner, self.change, self.attempts == 1

        class Unit(MemoryUnit):
            async def claim(self, processed: list[Processed]) -> set[str]:
                if first:
                    assert change.key is not None
                    inner.tables.processed[change.key] = {
                        "key": change.key,
                        "case_id": change.case_id,
                        "outcome": "applied",
                        "at": None,
                    }
                    self.t.processed = dict(inner.tables.processed)
                return await super().claim(processed)

        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def unit():  # type: ignore[no-untyped-def]
            async with inner.unit() as u:
                racing = Unit(u.t)
                racing.ops = u.ops  # its writes are the unit's, replayed when it commits
                yield racing

        return unit()


def desk_on(repository: object, d: Desk) -> Desk:
    return Desk(
        repository=repository,  # type: ignore[arg-type]
        lifecycle=d.lifecycle,
        clock=d.clock,
        outlets=d.outlets,
        ensure_topic=d.ensure_topic,
    )
