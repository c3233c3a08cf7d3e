"""The projector on in-memory records: every scripted event reaches the sink once, malformed records
and records under another case's key are dead-lettered with their reason, and a replayed batch
changes nothing. The sink here is an in-memory twin of the PostgreSQL read models."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date

from support import scripted_stream as script

from evaluation.domain.case_facts import CaseFacts, Policy, fold
from evaluation.domain.metrics import MetricKey, MetricRow, aggregate_all
from evaluation.projector import Projector
from evaluation.store import Applied, Positions, Received
from onegrid.kafka.memory import MemoryBroker


class MemoryReadModels:
    """Same contract as `ReadModels.apply`: events once per (case_id, seq); facts folded from all."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.events: dict[tuple[str, int], Received] = {}
        self.facts: dict[str, CaseFacts] = {}
        self.positions: Positions = {}

    async def apply(self, received: Sequence[Received], positions: Positions | None = None) -> Applied:
        for tp, o in (positions or {}).items():
            self.positions[tp] = max(self.positions.get(tp, 0), o)
        new = [r for r in received if (str(r.event.case_id), r.event.seq) not in self.events]
        for r in new:
            self.events.setdefault((str(r.event.case_id), r.event.seq), r)
        stored = len({(str(r.event.case_id), r.event.seq) for r in new})
        for cid in {str(r.event.case_id) for r in new}:
            self.facts[cid] = fold([e.event for (c, _), e in self.events.items() if c == cid], self.policy)
        return Applied(stored, len(received) - stored, len(new), 0)

    def rows(self) -> dict[MetricKey, MetricRow]:
        return aggregate_all(self.facts.values(), self.policy.definition())


def broker_with_stream() -> MemoryBroker:
    broker = MemoryBroker(partitions=3)
    for body in script.stream():
        broker.append("lifecycle", json.dumps(body).encode(), key=body["case_id"].encode())
    return broker


async def test_the_scripted_stream_through_the_projector_gives_the_hand_figures() -> None:
    broker = broker_with_stream()
    broker.append("lifecycle", b"{not json", key=b"k")
    missing_seq = dict(script.stream()[0])
    del missing_seq["seq"]
    broker.append("lifecycle", json.dumps(missing_seq).encode(), key=missing_seq["case_id"].encode())
    other = dict(script.stream()[0])
    broker.append("lifecycle", json.dumps(other).encode(), key=b"5d1c7a92-3e4b-4f60-8b2d-9c7e1a4f6b30")
    models = MemoryReadModels(Policy())
    projector = Projector(models)
    records = broker.records("lifecycle")

    result = await projector.handle(records)

    # The as-of covers the whole batch, dead letters included: the next offset of every partition.
    ends: dict[tuple[str, int], int] = {}
    for r in records:
        ends[(r.topic, r.partition)] = max(ends.get((r.topic, r.partition), 0), r.offset + 1)
    assert models.positions == ends and len(ends) == 3
    reasons = sorted((d.reason, d.stage) for d in result.dead_letters)
    assert reasons == [
        ("evaluation.key_mismatch", "decode"),
        ("evaluation.lifecycle_invalid", "decode"),
        ("evaluation.lifecycle_invalid", "decode"),
    ]
    assert "seq" in next(d.detail for d in result.dead_letters if "missing" in d.detail.lower())
    unique = len(script.stream()) - 1
    assert (projector.stored, projector.repeats, projector.rejected) == (unique, 1, 3)
    city = models.rows()[MetricKey("all", "*", "month", date(2026, 3, 1))]
    assert {c: getattr(city, c) for c in script.CITY_MONTH} == script.CITY_MONTH

    before = models.rows()
    valid = {(b["case_id"].encode(), json.dumps(b).encode()) for b in script.stream()}
    replay = [r for r in records if (r.key, r.value) in valid][::3]
    assert len(replay) > 10
    again = await projector.handle(replay)
    assert projector.stored == unique and projector.repeats == 1 + len(replay)
    assert models.rows() == before and again.dead_letters == []


async def test_during_a_rebuild_dead_letters_are_counted_not_sent_again() -> None:
    broker = MemoryBroker()
    broker.append("lifecycle", b"[]", key=b"k")
    projector = Projector(MemoryReadModels(Policy()), dead_letters=False)
    result = await projector.handle(broker.records("lifecycle"))
    assert result.dead_letters == [] and projector.rejected == 1
