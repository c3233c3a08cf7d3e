"""A large batch is split by case into units of work that run concurrently (Desk.lanes): each case's
changes stay in order in one unit, and the batch answers and leaves what one unit would."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter, defaultdict
from typing import Any

import pytest

from dispatch.desk import LANE_MIN, Change, lanes_of
from dispatch.store import Changes

from . import sample
from .batch_scenario import Scenario, _id, desk, feedback, outcomes, seeded_uuid4
from .memory_repository import MemoryRepository, Tables


def test_lanes_split_by_case_and_keep_each_cases_order() -> None:
    changes = [Change(None, f"case-{i % 7}", note=True) for i in range(70)]
    lanes = lanes_of(changes, 2)
    assert sorted(i for lane in lanes for i in lane) == list(range(70))
    assert all(lane == sorted(lane) for lane in lanes)
    cases = [{changes[i].case_id for i in lane} for lane in lanes]
    assert len(lanes) == 2 and not cases[0] & cases[1]
    assert lanes_of(changes, 1) == [list(range(70))]


def _batch(n: int) -> list[Change]:
    """`n` registrations, then for each case a repeat of its registration and an acknowledgement of
    an order it never got (refused), interleaved across cases as a consumer batch holds them."""
    events = [
        sample.case_event(category="city.street_vending", case_id=_id(5000 + i)) | {"event_id": _id(6000 + i)}
        for i in range(n)
    ]
    first = [Scenario.case(e) for e in events]
    later = [
        c
        for i, e in enumerate(events)
        for c in (
            Scenario.case(e),
            feedback(e["case_id"], _id(7000 + i), "acknowledge", 100 + i, "hj-urban-mgmt"),
        )
    ]
    return [*first, *later]


def _shape(t: Tables) -> dict[str, Any]:
    """The tables without the ids and times a run draws (uuid4 in whatever order the units ran)."""
    outbox: dict[bytes, list[str]] = defaultdict(list)
    for r in t.outbox:
        outbox[r["key"]].append(dict(r["headers"])["ce_type"].decode())
    return {
        "cases": {k: (r["state"], r["department"], r["hops"]) for k, r in t.cases.items()},
        "transitions": sorted((r["case_id"], r["seq"], r["action"], r["to_state"]) for r in t.transitions),
        "routing": sorted(
            (r["case_id"], json.dumps(r["decision"], sort_keys=True)) for r in t.routing_decisions
        ),
        "orders": sorted((r["case_id"], r["department"], r["kind"]) for r in t.orders),
        "processed": {k: (r["case_id"], r["outcome"]) for k, r in t.processed.items()},
        "outbox": dict(outbox),  # each case's records in the order written
    }


async def test_a_batch_in_lanes_answers_and_writes_what_one_unit_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = _batch(LANE_MIN * 2)
    runs = []
    for lanes in (1, 2):
        monkeypatch.setattr(uuid, "uuid4", seeded_uuid4(7))
        repo = MemoryRepository()
        d = desk(repo, sample)
        d.lanes = lanes
        runs.append((await d.apply(batch), repo))
    (one, one_repo), (two, two_repo) = runs
    assert one_repo.units == 1 and two_repo.units == 2
    assert outcomes(two) == outcomes(one)
    assert outcomes(one).count("applied") == LANE_MIN * 2
    assert outcomes(one).count("duplicate:applied") == LANE_MIN * 2
    assert outcomes(one).count("refused:feedback.unknown_order") == LANE_MIN * 2
    assert [r.case.case_id if r.case else None for r in two] == [
        r.case.case_id if r.case else None for r in one
    ]
    assert _shape(two_repo.tables) == _shape(one_repo.tables)
    assert len(two_repo.tables.cases) == LANE_MIN * 2


async def test_a_failing_lane_fails_the_batch_and_the_other_lanes_stay_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = _batch(LANE_MIN * 2)
    doomed = batch[0].case_id
    repo = MemoryRepository()

    class Broken(RuntimeError):
        pass

    from . import memory_repository as m

    write = m.MemoryUnit.write

    async def failing(self: m.MemoryUnit, changes: Changes) -> None:
        if doomed in changes.cases:
            raise Broken("the connection went away")
        await write(self, changes)

    monkeypatch.setattr(m.MemoryUnit, "write", failing)
    d = desk(repo, sample)
    with pytest.raises(Broken):
        await d.apply(batch)
    committed = set(repo.tables.cases)
    assert repo.units == 1 and committed and doomed not in committed
    # The batch again (the loop redelivers it): the committed lane's cases answer repeats, the
    # failed lane's register now.
    monkeypatch.setattr(m.MemoryUnit, "write", write)
    again = await d.apply(batch)
    registrations = again[: LANE_MIN * 2]
    assert [r.outcome for r in registrations] == [
        "duplicate:applied" if c.case_id in committed else "applied" for c in batch[: LANE_MIN * 2]
    ]
    assert len(repo.tables.cases) == LANE_MIN * 2


async def test_decisions_name_the_rules_they_looked_at_which_are_stored_once() -> None:
    """Every decision (and the case's copy of it) names the set of active rules it looked at; the
    set, the same for every case routed under one version of the rules, is stored once, under the
    SHA-256 of its JSON, listing every active rule in the order tried."""
    repo = MemoryRepository()
    lifecycle = desk(repo, sample).lifecycle()
    results = await desk(repo, sample).apply(Scenario(sample).first())
    assert all(r.applied for r in results)
    rules = lifecycle.directory._rules()
    expected = [[r["code"], int(r.get("revision", 0))] for r in rules]
    assert len(expected) > 1
    rule_set = hashlib.sha256(json.dumps(expected, separators=(",", ":")).encode()).hexdigest()
    assert repo.tables.routing_rule_sets == {rule_set: expected}
    assert repo.tables.routing_decisions
    for row in repo.tables.routing_decisions:
        case = repo.tables.cases[row["case_id"]]["body"]
        assert row["rule_set"] == row["decision"]["rule_set"] == rule_set
        assert "considered_rules" not in row["decision"]
        assert case["routing"] == row["decision"]


async def test_a_large_unit_decides_in_slices_and_lanes_decide_one_at_a_time() -> None:
    """Deciding a batch is Python work of ~200 µs a case: a unit hands the event loop back every
    DECIDE_SLICE changes (heartbeats, the relay and other lanes' round trips go on meanwhile), and the
    lanes of a batch still decide one after the other, so the first lane's statements run in
    PostgreSQL while the next lane is decided, as without slices."""
    import asyncio

    from dispatch.desk import DECIDE_SLICE, Desk

    repo = MemoryRepository()
    d = desk(repo, sample)
    batch = _batch(LANE_MIN * 2)[: LANE_MIN * 2]  # registrations of 2 * LANE_MIN cases: two lanes
    decided: list[str] = []
    turns = 0
    original = Desk._decide

    at_turn: list[int] = []  # the ticker's count at each decision

    def noting(self: Desk, change: Change, *args: Any) -> Any:
        decided.append(change.case_id)
        at_turn.append(turns)
        return original(self, change, *args)

    done = False

    async def ticker() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    tick = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Desk, "_decide", noting)
        results = await d.apply(batch)
    done = True
    await tick
    assert all(r.applied for r in results)
    # no more than DECIDE_SLICE decisions without the ticker running in between
    assert max(Counter(at_turn).values()) <= DECIDE_SLICE
    lanes = lanes_of(batch, d.lanes)
    assert len(lanes) == 2
    order = [[batch[i].case_id for i in lane] for lane in lanes]
    assert decided in ([*order[0], *order[1]], [*order[1], *order[0]])
